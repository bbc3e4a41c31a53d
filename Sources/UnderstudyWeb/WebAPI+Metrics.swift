import UnderstudyModel

extension WebAPI {
    /// `GET /metrics` (docs/metrics.md): any logged-in user (HTTP Basic or a session, viewer
    /// or operator, within the role's client-address list), or no credentials at all from the
    /// addresses of `cluster.web.metrics.unauthenticated-from`. Read from the coalesced status
    /// (at most ten daemon snapshots a second, however often Prometheus scrapes).
    func metrics(_ request: ApiRequest) async -> ApiResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return ApiResponse(
                ApiReply(status: 405, body: ApiReply.error(.badRequest, "\(request.method) is not allowed here; use GET.").body),
                headers: [("Allow", "GET")])
        }
        let address = request.address ?? "unknown"
        let open =
            request.address.map { client in
                settings.metricsUnauthenticatedFrom.contains { AddressRange($0)?.contains(client) == true }
            } ?? false
        if !open {
            switch await identify(request, address: address) {
            case .success(let principal):
                guard policy.effectiveRole(user: principal.role, address: request.address) != nil else {
                    return ApiResponse(.error(.forbidden, "Client address \(address) is not allowed for user \(principal.user)."))
                }
            case .failure(let response):
                return response
            }
        }
        guard let snapshot = await feed.current() else {
            return ApiResponse(.error(.unreachable, "The daemon did not answer with its status."))
        }
        return ApiResponse(
            status: 200, headers: [], body: .text(MetricsExporter.render(snapshot), contentType: MetricsExporter.contentType))
    }
}
