import UnderstudyModel

/// Activation order of a group's resources: dependencies first. A resource without
/// `depends:` depends on every resource of a lower default layer (fip/vip/ddns, then volmgr,
/// then disk/nas, then exec/vm). Ties keep the order of the file. The validator has already
/// rejected cycles; a cycle that slips through still yields every resource once.
enum DependencyOrder {
    static func dependencies(of resource: ResourceConfig, in group: GroupConfig) -> [ResourceName] {
        if let explicit = resource.depends { return explicit }
        return group.resources.filter { $0.type.defaultLayer < resource.type.defaultLayer }.map(\.name)
    }

    static func activationOrder(of group: GroupConfig) -> [ResourceName] {
        var placed: [ResourceName] = []
        var remaining = group.resources
        while !remaining.isEmpty {
            let readyIndex = remaining.firstIndex { resource in
                dependencies(of: resource, in: group).allSatisfy { dep in
                    placed.contains(dep) || !group.resources.contains { $0.name == dep }
                }
            }
            let index = readyIndex ?? remaining.startIndex
            placed.append(remaining[index].name)
            remaining.remove(at: index)
        }
        return placed
    }
}
