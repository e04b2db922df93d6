import Foundation

/// The host part of `tcp://HOST:PORT` endpoints.
public enum TCPEndpoint {
    /// HOST when it is a host name: not `*`, not an IPv4 or bracketed IPv6 address and not a
    /// network interface (`eth0`), the three things libzmq can bind. nil for other endpoints.
    public static func hostName(in endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
            colon > endpoint.index(endpoint.startIndex, offsetBy: 6)
        else { return nil }
        let host = String(endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon])
        if host == "*" || host.hasPrefix("[") || host.contains(";") { return nil }
        var ipv4 = in_addr()
        if inet_pton(AF_INET, host, &ipv4) == 1 { return nil }
        if if_nametoindex(host) != 0 { return nil }
        return host
    }

    /// `endpoint` with its host replaced by `host`.
    public static func replacingHost(in endpoint: String, with host: String) -> String {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return endpoint }
        return "tcp://" + host + endpoint[colon...]
    }
}
