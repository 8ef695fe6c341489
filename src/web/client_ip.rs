//! The client's address: the connection's peer, or, when the peer is a
//! configured trusted proxy (`http.trusted_proxies`), the address it names in
//! `X-Forwarded-For`: the rightmost one that is not itself a trusted proxy
//! (the leftmost entries are whatever the client claimed, so they are not believed).

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| entry(s.trim()))
        .collect();
    // From the right: the first entry that is not a trusted proxy is the client.
    // One that cannot be read (`unknown`) stops the walk: what is left of it is
    // the client's own claim, so the last trusted hop's peer is used instead.
    let mut client = peer;
    for e in chain.iter().rev() {
        match e {
            Some(ip) if is_trusted(ip) => client = *ip,
            Some(ip) => return *ip,
            None => return client,
        }
    }
    client
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:4711`, `2001:db8::1` or `[2001:db8::1]:443`.
fn entry(s: &str) -> Option<IpAddr> {
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[').and_then(|r| r.split_once(']')).and_then(|(h, _)| h.parse().ok()))?;
    Some(ip.to_canonical())
}

/// Reads `http.trusted_proxies` entries: an address or a network (`10.0.0.0/8`).
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{e:?} is not an address or a network; write e.g. \"10.0.0.5\" or \"10.0.0.0/8\""))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", xff.parse().unwrap());
        m
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = parse_trusted(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(resolve(proxy, &h("203.0.113.7"), &trusted).to_string(), "203.0.113.7");
        // A client's own claim on the left is not believed; the rightmost untrusted is.
        assert_eq!(resolve(proxy, &h("1.1.1.1, 203.0.113.7, 10.0.0.9"), &trusted).to_string(), "203.0.113.7");
        assert_eq!(resolve(stranger, &h("203.0.113.7"), &trusted), stranger);
        assert_eq!(resolve(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(resolve(proxy, &h("garbage"), &trusted), proxy);
        // Ports and brackets as proxies write them; an unreadable hop is not skipped over.
        assert_eq!(resolve(proxy, &h("203.0.113.7:4711"), &trusted).to_string(), "203.0.113.7");
        assert_eq!(resolve(proxy, &h("[2001:db8::1]:443"), &trusted).to_string(), "2001:db8::1");
        assert_eq!(resolve(proxy, &h("6.6.6.6, unknown"), &trusted), proxy);
        assert_eq!(resolve(proxy, &h("6.6.6.6, unknown, 10.0.0.9"), &trusted).to_string(), "10.0.0.9");
        let v6peer: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(resolve(v6peer, &h("203.0.113.7"), &trusted).to_string(), "203.0.113.7");
        assert!(parse_trusted(&["nope".into()]).unwrap_err().contains("10.0.0.0/8"));
    }
}
