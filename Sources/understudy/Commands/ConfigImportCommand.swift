// `understudy config import clp.conf`: converts a CLUSTERPRO / EXPRESSCLUSTER configuration
// (ClpConfImporter in the Model does the conversion) and writes the YAML, its scripts and a
// cluster key beside it. Mapping and limits: docs/clusterpro-import.md.

import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

extension ConfigCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a CLUSTERPRO / EXPRESSCLUSTER clp.conf into a cluster YAML file.",
            discussion: """
                Reads CLP_CONF (Shift_JIS, EUC-JP or UTF-8; CRLF or LF), writes OUTPUT, copies the \
                exec and genw scripts of an exported config folder (scripts/<group>/<resource>/, \
                scripts/monitor.s/<monitor>/ beside CLP_CONF) beside OUTPUT, writes a new \
                cluster key (cluster.key) there unless one exists, and checks the result as \
                `config check` does. Everything not converted is listed on standard error, one \
                line each (clp.conf path: reason), and again as comments at the end of OUTPUT. \
                Exit codes: 0 converted and the result passes config check (even when some \
                items were not converted); 1 OUTPUT exists (use --force) or the result does \
                not pass config check; 2 CLP_CONF cannot be read (file:line: reason).
                """)

        @Argument(help: "The clp.conf file (in an exported configuration folder, for its scripts).") var clpConf: String
        @Option(name: .shortAndLong, help: "The YAML file to write.") var output = "cluster.yaml"
        @Flag(name: .long, help: "Replace OUTPUT and scripts that exist already.") var force = false
        @Flag(name: .long, help: "Do not write a cluster key beside OUTPUT.") var noKey = false

        func run() throws {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: clpConf))
            } catch {
                printToStandardError("\(clpConf): cannot read the file: \(error.localizedDescription)")
                throw ExitCode(2)
            }
            let result: ClpImportResult
            do throws(ClpImportError) {
                result = try ClpConfImporter.convert(data, sourceName: (clpConf as NSString).lastPathComponent)
            } catch {
                printToStandardError("\(clpConf):\(error.line.map { "\($0):" } ?? "") \(error.message)")
                throw ExitCode(2)
            }
            let manager = FileManager.default
            if manager.fileExists(atPath: output) && !force {
                printToStandardError("\(output) exists; --force replaces it")
                throw ExitCode(1)
            }
            let outputURL = URL(fileURLWithPath: output).standardizedFileURL
            let folder = outputURL.deletingLastPathComponent().path
            let sourceFolder = URL(fileURLWithPath: clpConf).standardizedFileURL.deletingLastPathComponent().path
            do {
                try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try Data(result.yaml.utf8).write(to: outputURL, options: .atomic)
            } catch {
                printToStandardError("\(output): cannot write: \(error.localizedDescription)")
                throw ExitCode(1)
            }
            for item in result.unmapped { printToStandardError("not converted: \(item)") }
            for note in result.notes { printToStandardError("note: \(note)") }
            copyScripts(result.scripts, from: sourceFolder, to: folder)
            let keyPath = folder + "/cluster.key"
            if !noKey && !manager.fileExists(atPath: keyPath) {
                do {
                    _ = try ClusterKey.generate(to: keyPath)
                    printToStandardError("note: wrote a new cluster key to \(keyPath); copy it to every server (mode 0600)")
                } catch {
                    printToStandardError("warning: cannot write a cluster key to \(keyPath): \(error)")
                }
            }
            try check(result)
        }

        private func copyScripts(_ scripts: [ClpScriptCopy], from sourceFolder: String, to folder: String) {
            let manager = FileManager.default
            for script in scripts {
                let source = sourceFolder + "/" + script.source
                let destination = folder + "/" + script.destination
                guard manager.fileExists(atPath: source) else {
                    printToStandardError(
                        "warning: \(script.source) is not beside \((clpConf as NSString).lastPathComponent) (\(script.owner) names it); put the script at \(destination)"
                    )
                    continue
                }
                if manager.fileExists(atPath: destination) {
                    guard force else {
                        printToStandardError("warning: \(destination) exists and was kept (--force replaces it)")
                        continue
                    }
                    try? manager.removeItem(atPath: destination)
                }
                do {
                    try manager.createDirectory(
                        atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try manager.copyItem(atPath: source, toPath: destination)
                    try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: destination)
                } catch {
                    printToStandardError("warning: cannot copy \(source) to \(destination): \(error.localizedDescription)")
                }
            }
        }

        /// `config check` on what was written.
        private func check(_ result: ClpImportResult) throws {
            let loaded: LoadedConfig
            do throws(ConfigErrors) {
                loaded = try ConfigLoader.loadWithWarnings(path: output, checkFiles: true)
            } catch {
                for diagnostic in error.diagnostics { printToStandardError(diagnostic.description) }
                printToStandardError("\(output): converted, but the result does not pass config check; fix the lines above")
                throw ExitCode(1)
            }
            let heartbeat = HeartbeatBudget.estimate(loaded.config)
            if let problem = heartbeat.problem {
                printToStandardError("\(output): \(problem)")
                throw ExitCode(1)
            }
            for warning in loaded.warnings { printToStandardError(warning.description) }
            let config = loaded.config
            let resourceCount = config.groups.reduce(0) { $0 + $1.resources.count }
            let left =
                result.unmapped.isEmpty
                ? "everything converted" : "\(result.unmapped.count) items not converted (listed above and at the end of the file)"
            print(
                "\(output): converted from \(clpConf) (\(config.servers.count) servers, \(config.groups.count) groups, "
                    + "\(resourceCount) resources, \(config.monitors.count) monitors; \(left)); config check OK")
        }
    }
}

private func printToStandardError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
