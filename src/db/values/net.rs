//! Network address types in both directions: inet and cidr (including the IPv6 text
//! PostgreSQL prints, which is not Rust's), and macaddr/macaddr8 output.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::decode::{Reader, push_hex};

/// Address family bytes of the inet/cidr binary format (PGSQL_AF_INET, PGSQL_AF_INET6).
const PGSQL_AF_INET: u8 = 2;
const PGSQL_AF_INET6: u8 = 3;

pub(super) fn format_inet(bytes: &[u8], is_cidr: bool) -> Result<String, String> {
    let mut r = Reader::new(bytes);
    let family = r.u8()?;
    let bits = r.u8()?;
    // The value's own cidr flag only echoes its type, which the decoder already knows.
    let _is_cidr = r.u8()?;
    let nb = r.u8()?;
    let (len, max_bits) = match family {
        PGSQL_AF_INET => (4, 32),
        PGSQL_AF_INET6 => (16, 128),
        other => return Err(format!("unknown address family {other}")),
    };
    if usize::from(nb) != len {
        return Err(format!("address length {nb} does not match its family"));
    }
    if bits > max_bits {
        return Err(format!("invalid prefix length {bits}"));
    }
    let addr = r.take(len)?;
    r.finish()?;
    let mut out = if family == PGSQL_AF_INET {
        addr.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
    } else {
        format_ipv6(addr)
    };
    // inet hides a full-length prefix; cidr always shows it.
    if is_cidr || bits != max_bits {
        let _ = write!(out, "/{bits}");
    }
    Ok(out)
}

/// IPv6 text as PostgreSQL prints it, which differs from Rust's RFC 5952 `Display`: the first
/// longest run of two or more zero groups becomes "::", and when the address starts with five
/// zero groups then ffff (IPv4-mapped) or with six zero groups (IPv4-compatible), the last 32 bits
/// print as dotted quad (`::ffff:1.2.3.4`, `::1.2.3.4`, and `::2:3` as `::0.2.0.3`).
fn format_ipv6(addr: &[u8]) -> String {
    let mut words = [0u16; 8];
    for (word, pair) in words.iter_mut().zip(addr.chunks_exact(2)) {
        *word = u16::from_be_bytes([pair[0], pair[1]]);
    }
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < words.len() {
        if words[i] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < words.len() && words[i] == 0 {
            i += 1;
        }
        let len = i - start;
        if len >= 2 && best.is_none_or(|(_, best_len)| len > best_len) {
            best = Some((start, len));
        }
    }
    let embedded_v4 = matches!(best, Some((0, 6))) || (best == Some((0, 5)) && words[5] == 0xffff);

    let mut out = String::with_capacity(40);
    let mut i = 0;
    while i < words.len() {
        if let Some((start, len)) = best
            && i == start
        {
            out.push(':');
            if start + len == words.len() {
                out.push(':');
            }
            i += len;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && embedded_v4 {
            let _ = write!(
                out,
                "{}",
                Ipv4Addr::new(addr[12], addr[13], addr[14], addr[15])
            );
            break;
        }
        let _ = write!(out, "{:x}", words[i]);
        i += 1;
    }
    out
}

pub(super) fn format_mac(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        push_hex(&mut out, std::slice::from_ref(b));
    }
    out
}

/// inet/cidr binary from `address[/prefix]`.
pub(super) fn inet_to_binary(text: &str, is_cidr: bool) -> Result<Vec<u8>, String> {
    let (addr_text, bits_text) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let (family, addr, max_bits): (u8, Vec<u8>, u8) = if let Ok(v4) = addr_text.parse::<Ipv4Addr>()
    {
        (PGSQL_AF_INET, v4.octets().to_vec(), 32)
    } else if let Ok(v6) = addr_text.parse::<Ipv6Addr>() {
        (PGSQL_AF_INET6, v6.octets().to_vec(), 128)
    } else {
        return Err("expected an IPv4 or IPv6 address".to_owned());
    };
    let bits = match bits_text {
        None => max_bits,
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|&b| b <= max_bits)
            .ok_or_else(|| format!("invalid prefix length (0 to {max_bits})"))?,
    };
    if is_cidr {
        // cidr_recv rejects host bits right of the mask; name the fix instead.
        for (i, &byte) in addr.iter().enumerate() {
            let kept = usize::from(bits).saturating_sub(i * 8).min(8);
            let host_mask = if kept == 8 { 0 } else { 0xffu8 >> kept };
            if byte & host_mask != 0 {
                return Err("cidr value has bits set to the right of the prefix length \
                            (use the network address, or type inet)"
                    .to_owned());
            }
        }
    }
    let nb = u8::try_from(addr.len()).map_err(|_| "address too long".to_owned())?;
    let mut out = vec![family, bits, u8::from(is_cidr), nb];
    out.extend_from_slice(&addr);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::db::values::{Codec, decode};
    use serde_json::json;

    #[test]
    fn formats_network_addresses_like_postgres() {
        let cases: Vec<(Codec, Vec<u8>, &str)> = vec![
            (
                Codec::Inet,
                inet(2, 32, 0, &[192, 168, 0, 1]),
                "192.168.0.1",
            ),
            (Codec::Inet, inet(2, 8, 0, &[10, 0, 0, 0]), "10.0.0.0/8"),
            (Codec::Inet, inet(2, 8, 0, &[10, 0, 0, 1]), "10.0.0.1/8"),
            (
                Codec::Cidr,
                inet(2, 16, 1, &[192, 168, 0, 0]),
                "192.168.0.0/16",
            ),
            (
                Codec::Cidr,
                inet(2, 32, 1, &[192, 168, 0, 1]),
                "192.168.0.1/32",
            ),
            (Codec::Inet, inet(3, 128, 0, &ipv6("::1")), "::1"),
            (Codec::Inet, inet(3, 128, 0, &ipv6("::")), "::"),
            (Codec::Inet, inet(3, 128, 0, &ipv6("1::")), "1::"),
            (
                Codec::Cidr,
                inet(3, 32, 1, &ipv6("2001:db8::")),
                "2001:db8::/32",
            ),
            (Codec::Inet, inet(3, 128, 0, &ipv6("::2:3")), "::0.2.0.3"),
            (
                Codec::Inet,
                inet(3, 128, 0, &ipv6("::ffff:1.2.3.4")),
                "::ffff:1.2.3.4",
            ),
            (
                Codec::Inet,
                inet(3, 128, 0, &ipv6("::1.2.3.4")),
                "::1.2.3.4",
            ),
            (
                Codec::Inet,
                inet(3, 128, 0, &ipv6("1:0:0:2:0:0:0:3")),
                "1:0:0:2::3",
            ),
            (
                Codec::Inet,
                inet(3, 128, 0, &ipv6("1:0:2:0:3:0:4:0")),
                "1:0:2:0:3:0:4:0",
            ),
            (
                Codec::Inet,
                inet(3, 128, 0, &ipv6("1:0:0:2:0:0:3:4")),
                "1::2:0:0:3:4",
            ),
            (
                Codec::Inet,
                inet(3, 128, 0, &ipv6("0:0:0:0:0:1:0:0")),
                "::1:0:0",
            ),
            (
                Codec::Cidr,
                inet(3, 96, 1, &ipv6("::ffff:0:0")),
                "::ffff:0.0.0.0/96",
            ),
            (
                Codec::Inet,
                inet(3, 64, 0, &ipv6("fe80::abcd:ef01:2345:6789")),
                "fe80::abcd:ef01:2345:6789/64",
            ),
        ];
        for (dec, bytes, want) in cases {
            assert_eq!(decode(&dec, &bytes), Ok(json!(want)), "{want}");
        }
    }
}
