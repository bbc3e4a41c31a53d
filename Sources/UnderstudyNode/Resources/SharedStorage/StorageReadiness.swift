import Foundation
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What the daemon checks on this machine before it starts, for the storage resources of
/// the groups this server may run: a device path that is not a block device, a mount point
/// whose parent folder is missing. Each problem names the file, line and key, as the loader's
/// own errors do. `UUID=`/`LABEL=` devices are found at activation (the disk may be attached
/// to another server now).
public enum StorageReadiness {
    public static func problems(_ loaded: LoadedConfig, server: ServerName) -> [ConfigDiagnostic] {
        var problems: [ConfigDiagnostic] = []
        let config = loaded.config
        func report(_ message: String, at keyPath: String) {
            let position = loaded.sourceMap.position(of: keyPath)
            problems.append(
                ConfigDiagnostic(
                    severity: .error, file: config.sourcePath, line: position?.line ?? 0, column: position?.column ?? 0,
                    keyPath: keyPath, message: message))
        }
        for (groupIndex, group) in config.groups.enumerated() where group.servers.contains(server) {
            for (resourceIndex, resource) in group.resources.enumerated() {
                let base = loaded.sourceMap.resourcePath(group: groupIndex, resource: resourceIndex)
                switch resource.settings {
                case .disk(let disk):
                    if disk.device.hasPrefix("/") {
                        var info = stat()
                        if stat(disk.device, &info) != 0 {
                            report("device \(disk.device) does not exist on \(server)", at: base + ".device")
                        } else if info.st_mode & S_IFMT != S_IFBLK {
                            report("\(disk.device) is not a block device", at: base + ".device")
                        }
                    }
                    if !disk.isRaw { checkParent(disk.mountPoint, at: base + ".mount-point") }
                case .nas(let nas):
                    checkParent(nas.mountPoint, at: base + ".mount-point")
                default:
                    break
                }
            }
        }
        func checkParent(_ mountPoint: String, at keyPath: String) {
            let parent = (mountPoint as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) || !isDirectory.boolValue {
                report("the parent folder \(parent) of the mount point does not exist on \(server)", at: keyPath)
            }
        }
        return problems
    }
}
