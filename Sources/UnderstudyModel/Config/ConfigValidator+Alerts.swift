// `alerts:` files that must be on this machine: the command destinations' programs and the
// secret and password files (warnings, like every file check: a configuration may be checked
// on another machine). Shape, names and event ids are checked while loading
// (ConfigLoader+Alerts.swift).

extension Validator {
    mutating func checkAlerts() {
        for (index, destination) in config.alerts.destinations.enumerated() {
            let path = "alerts.destinations[\(index)]"
            switch destination.kind {
            case .command(let settings):
                checkFileExists(settings.path, at: path + ".path", what: "alert command", executable: true)
            case .webhook(let settings):
                if let file = settings.secretFile { checkFileExists(file, at: path + ".secret-file", what: "webhook secret file") }
                if let file = settings.caFile { checkFileExists(file, at: path + ".ca-file", what: "webhook CA file") }
            case .mail(let settings):
                if let file = settings.passwordFile { checkFileExists(file, at: path + ".smtp.password-file", what: "SMTP password file") }
            case .syslog, .snmp:
                break
            }
        }
    }
}
