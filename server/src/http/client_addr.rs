//! Who is on the other end of a request, for the per-address sign-in throttle. Behind a reverse
//! proxy every request comes from the proxy; when its address is trusted (`--trusted-proxies`),
//! the client is the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
//! Untrusted peers' `X-Forwarded-For` is ignored: anyone can write that header.
use http::HeaderMap;
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Addresses or CIDR ranges: `10.0.0.0/8`, `fd00::/8`, `192.168.1.7`.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut v = Vec::new();
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let bad = || format!("trusted-proxies: {item} is not an address or CIDR range");
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a.parse::<IpAddr>().map_err(|_| bad())?, b.parse::<u8>().map_err(|_| bad())?),
                None => {
                    let a = item.parse::<IpAddr>().map_err(|_| bad())?;
                    (a, if a.is_ipv4() { 32 } else { 128 })
                }
            };
            if bits > if addr.is_ipv4() { 32 } else { 128 } {
                return Err(bad());
            }
            v.push((addr, bits));
        }
        Ok(Self(v))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => prefix(u32::from(*n).into(), u32::from(i).into(), *bits, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix(u128::from(*n), u128::from(i), *bits, 128),
            _ => false,
        })
    }

    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().parse::<IpAddr>())
            .collect::<Vec<_>>();
        // Nearest first: the last entry was added by the proxy that reached us.
        for hop in hops.into_iter().rev() {
            match hop {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return ip,
                // A hop that does not parse cannot be believed, nor anything before it.
                Err(_) => break,
            }
        }
        peer
    }
}

fn prefix(net: u128, ip: u128, bits: u8, width: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let shift = u32::from(width - bits);
    (net >> shift) == (ip >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn only_trusted_proxies_are_looked_through() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::/8".into()]).unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(t.client(proxy, &xff("198.51.100.4, 10.9.9.9")), "198.51.100.4".parse::<IpAddr>().unwrap());
        assert_eq!(t.client(stranger, &xff("198.51.100.4")), stranger, "a forged header from an untrusted peer");
        assert_eq!(t.client(proxy, &xff("198.51.100.4, junk, 10.9.9.9")), proxy, "nothing before a bad hop");
        assert_eq!(t.client(proxy, &HeaderMap::new()), proxy);
        let v6: IpAddr = "fd12::1".parse().unwrap();
        assert_eq!(t.client(v6, &xff("2001:db8::7")), "2001:db8::7".parse::<IpAddr>().unwrap());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy".into()]).is_err());
        assert_eq!(
            TrustedProxies::parse(&[]).unwrap().client(proxy, &xff("1.2.3.4")),
            proxy,
            "none trusted by default"
        );
        assert!(TrustedProxies::parse(&["0.0.0.0/0".into()]).unwrap().trusts(stranger));
    }
}
