import Foundation
import Testing

@testable import UnderstudyModel

/// The package root, found from this file's location (Tests/UnderstudyModelTests/…).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The reference example every version must load unchanged.
let examplePath = packageRoot + "/../shared/design/cluster-example.yaml"

/// A small valid config: two servers, two lanhb paths, a pingnp, one group. Tests add or
/// replace sections to make one thing wrong. Lines are numbered in the comments so the
/// expected line numbers in tests are easy to check.
let baseCluster = """
    cluster:
      name: c1
      secret-file: /etc/understudy/test.key
    servers:
      - name: node1
      - name: node2
    heartbeats:
      - {name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}
      - {name: lan2, type: lanhb, addresses: {node1: 10.0.1.1, node2: 10.0.1.2}}
    network-partition:
      - {name: np1, type: pingnp, targets: [10.0.0.254]}

    """
/// Lines in `baseCluster`, so a test's own text starts on line `baseLines + 1`.
let baseLines = 11

/// A group section valid against `baseCluster`.
let baseGroup = """
    groups:
      - name: g1
        resources:
          - {name: exec1, type: exec, start: /bin/true, stop: /bin/true}

    """

/// Loads inline YAML; no checks of files on this machine unless asked.
func load(_ yaml: String, checkFiles: Bool = false, sourcePath: String = "cluster.yaml") throws(ConfigErrors)
    -> LoadedConfig
{
    try ConfigLoader.loadWithWarnings(yaml: yaml, sourcePath: sourcePath, checkFiles: checkFiles)
}

/// The errors of a YAML text that must not load; records an issue when it loads.
func errors(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigDiagnostic] {
    do {
        _ = try load(yaml)
        Issue.record("expected errors, but the config loaded", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.errors
    }
}

/// Asserts exactly one problem at `keyPath` (and `line` when given) whose message contains
/// every fragment.
@discardableResult
func expectError(
    _ yaml: String, line: Int? = nil, keyPath: String, _ fragments: String...,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigDiagnostic? {
    let found = errors(yaml, sourceLocation: sourceLocation)
    let matching = found.filter { $0.keyPath == keyPath }
    guard let problem = matching.first else {
        Issue.record(
            "no error at \(keyPath); got:\n\(found.map(\.description).joined(separator: "\n"))",
            sourceLocation: sourceLocation)
        return nil
    }
    if let line {
        #expect(problem.line == line, "\(problem)", sourceLocation: sourceLocation)
    }
    for fragment in fragments {
        #expect(problem.message.contains(fragment), "\(problem)", sourceLocation: sourceLocation)
    }
    #expect(problem.description.hasPrefix("cluster.yaml:"), sourceLocation: sourceLocation)
    return problem
}
