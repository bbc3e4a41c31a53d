import Testing
import UnderstudyModel

@testable import UnderstudyEngine

/// A group's local transitions, as values: what the engine calls between its logs and actions.
@Suite("LocalGroup transitions")
struct LocalGroupTests {
    @Test("a start walks the resources in order, skipping those online, and ends Online or Online Failure")
    func startWalk() {
        var group = LocalGroup(resources: ["ip", "disk", "app"])
        group.beginStart(event: .failover, generation: 7)
        #expect(group.status == .onlinePending && group.generation == 7 && group.lastTriedGeneration == 7)
        let order = ["ip", "disk", "app"]
        #expect(group.nextToStart(in: order, from: 0) == 0)
        group.launched("ip", .starting(event: .failover, index: 0, runID: 1))
        #expect(group.resourceStatus["ip"] == .onlinePending && group.isBusy)
        group.resourceStarted("ip", asyncPID: nil)
        group.resourceStarted("disk", asyncPID: 42)
        #expect(group.nextToStart(in: order, from: 1) == 2)
        #expect(group.asyncPIDs == ["disk": 42])
        group.resourceStarted("app", asyncPID: nil)
        #expect(group.nextToStart(in: order, from: 0) == nil)
        group.finishStart()
        #expect(group.status == .online && !group.isBusy)

        var failed = LocalGroup(resources: ["ip", "app"])
        failed.beginStart(event: .start, generation: 3)
        failed.activationFailed("app")
        #expect(failed.status == .onlineFailure && failed.activationFailedResource == "app" && !failed.isBusy)
    }

    @Test("a stop walks backwards within its scope and ends Offline, or Offline Failure when a resource is stuck")
    func stopWalk() {
        var group = LocalGroup(resources: ["ip", "disk", "app"])
        for resource in ["ip", "disk", "app"] { group.resourceStarted(resource, asyncPID: 9) }
        let order = ["ip", "disk", "app"]
        #expect(group.nextToStop(in: order, from: 2, scope: nil) == 2)
        #expect(group.nextToStop(in: order, from: 2, scope: ["ip"]) == 0)
        group.resourceStopped("app")
        #expect(group.nextToStop(in: order, from: 2, scope: nil) == 1)
        group.resourceStopped("disk")
        group.resourceStatus["ip"] = .offlineFailure
        group.finishStop()
        #expect(group.status == .offlineFailure && group.asyncPIDs.isEmpty)
    }

    @Test("clprsc on one resource: the group's status sums its resources; a partly stopped group is marked operator-stopped")
    func singleResource() {
        var group = LocalGroup(resources: ["ip", "app"])
        group.resourceStarted("ip", asyncPID: nil)
        group.resourceStarted("app", asyncPID: nil)
        group.finishSingle(.stop, "app", outcome: .success(asyncPID: nil))
        #expect(group.status == .onlineFailure && group.operatorStopped)
        group.finishSingle(.start, "app", outcome: .success(asyncPID: 5))
        #expect(group.status == .online && !group.operatorStopped && group.asyncPIDs["app"] == 5)
        group.finishSingle(.stop, "ip", outcome: .failure(reason: "exit code 1"))
        #expect(group.status == .offlineFailure)
    }

    @Test("a stop held for stop-after groups shows the group as stopping; ending the wait brings the status before it back")
    func heldStop() {
        var group = LocalGroup(resources: ["app"])
        group.resourceStarted("app", asyncPID: nil)
        group.finishStart()
        group.holdStop(StopRequest(factor: .clusterShutdown, event: .start, lastAction: .none), since: .seconds(3))
        #expect(group.status == .offlinePending && group.waitingStop?.since == .seconds(3))
        group.endStopWait()
        #expect(group.status == .online && group.waitingStop == nil)
        group.endStopWait()
        #expect(group.status == .online)
    }
}
