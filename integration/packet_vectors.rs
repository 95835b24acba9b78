//! The VRRP codec against real packets: keepalived 2.2.7's captures decoded, checked field by
//! field against tcpdump's reading and re-encoded byte for byte; every `DecodeError` on a
//! concrete byte string; and a deterministic robustness run over random and mutated input.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vipkeeper::vrrp::packet::{
    decode, decode_ipv4_header, encode, Advertisement, Auth, ChecksumMode, DecodeError, Endpoints,
    IPPROTO_VRRP,
};
use vipkeeper::vrrp::{Centis, Family, Version};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/keepalived-2.2.7.jsonl"
);

/// One VRRP line of the capture file.
#[derive(Clone, Debug)]
struct Vector {
    capture: String,
    ip: Vec<u8>,
    vrrp: Vec<u8>,
    ttl_or_hop_limit: u64,
}

/// What tcpdump (keepalived-2.2.7.tcpdump.txt) and the capture notes say about a line.
struct Expected {
    /// How the `capture` description of the line ends, to keep this table aligned with it.
    capture_end: &'static str,
    src: IpAddr,
    dst: IpAddr,
    advert: Advertisement,
    mode: ChecksumMode,
    /// v3 over IPv4: the checksum the other checksum mode computes (worked out by hand).
    other_mode_checksum: Option<u16>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The VRRP lines of the capture file; asserts the others are exactly the ARP and NA frames.
fn load_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| {
        panic!("cannot read {VECTORS}: {e} (shared/ must sit beside the repo)")
    });
    let mut vectors = Vec::new();
    let mut skipped = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let capture = value["capture"].as_str().expect("capture").to_string();
        match value.get("vrrp").and_then(|v| v.as_str()) {
            Some(vrrp) => vectors.push(Vector {
                ip: hex(value["ip"].as_str().expect("ip")),
                vrrp: hex(vrrp),
                ttl_or_hop_limit: value["ttl_or_hop_limit"].as_u64().expect("ttl"),
                capture,
            }),
            // ARP and NA frames: covered by the network work, not the codec.
            None => skipped.push(capture),
        }
    }
    assert_eq!(skipped.len(), 2, "skipped lines: {skipped:?}");
    assert!(skipped[0].contains("gratuitous ARP"), "{}", skipped[0]);
    assert!(
        skipped[1].contains("neighbour advertisement"),
        "{}",
        skipped[1]
    );
    vectors
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn ends(src: IpAddr, dst: IpAddr) -> Endpoints {
    Endpoints { src, dst }
}

/// The expected reading of every VRRP line, in file order, written out from tcpdump.txt.
///
/// tcpdump.txt prints the first three adverts of each capture (and, for v6, the shutdown
/// advert); the priority-0 lines of v2, v3 and v3u are otherwise identical to their adverts,
/// as the capture notes say.
fn expected() -> Vec<Expected> {
    let advert = |version, vrid, priority, centis, addresses: &[&str], auth: Auth| Advertisement {
        version,
        vrid,
        priority,
        max_adver_int: Centis::new(centis),
        addresses: addresses
            .iter()
            .map(|a| a.parse::<IpAddr>().unwrap())
            .collect(),
        auth,
    };
    let secret = Auth::SimplePassword(*b"secret12");
    let v2 = |priority| {
        advert(
            Version::V2,
            51,
            priority,
            100, // "intvl 1s"
            &["192.0.2.50", "192.0.2.51"],
            secret.clone(),
        )
    };
    let v3 = |priority| advert(Version::V3, 52, priority, 10, &["192.0.2.52"], Auth::None);
    let v3u = |priority| advert(Version::V3, 53, priority, 100, &["192.0.2.53"], Auth::None);
    let v6a = |priority| {
        advert(
            Version::V3,
            54,
            priority,
            100,
            &["2001:db8::54"],
            Auth::None,
        )
    };
    let (me, group) = (v4("192.0.2.11"), v4("224.0.0.18"));
    let (peer, me6, group6) = (
        v4("192.0.2.12"),
        v6("fe80::ac8c:d1ff:fed2:1394"),
        v6("ff02::12"),
    );
    let pseudo = ChecksumMode::PseudoHeader;
    let row = |capture_end, src, dst, advert, other_mode_checksum| Expected {
        capture_end,
        src,
        dst,
        advert,
        mode: pseudo,
        other_mode_checksum,
    };
    vec![
        row("; advert", me, group, v2(150), None),
        row("; shutdown, priority 0", me, group, v2(0), None),
        row("; advert", me, group, v3(200), Some(0x448b)),
        row("; shutdown, priority 0", me, group, v3(0), Some(0x0c8c)),
        row("; advert", me, peer, v3u(120), Some(0x942f)),
        row("; shutdown, priority 0", me, peer, v3u(0), Some(0x0c30)),
        row("; advert", me6, group6, v6a(100), None),
        row("; shutdown, priority 0", me6, group6, v6a(0), None),
    ]
}

fn other_mode(mode: ChecksumMode) -> ChecksumMode {
    match mode {
        ChecksumMode::PseudoHeader => ChecksumMode::V2Compatible,
        ChecksumMode::V2Compatible => ChecksumMode::PseudoHeader,
    }
}

/// Source and destination from a 40-byte IPv6 header, after checking it carries VRRP whole.
fn ipv6_endpoints(ip: &[u8], payload: &[u8]) -> (Endpoints, u8) {
    assert_eq!(ip[0] >> 4, 6);
    assert_eq!(&ip[40..], payload);
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[4], ip[5]])),
        payload.len()
    );
    assert_eq!(ip[6], IPPROTO_VRRP, "next header");
    let src: [u8; 16] = ip[8..24].try_into().unwrap();
    let dst: [u8; 16] = ip[24..40].try_into().unwrap();
    (
        ends(Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()),
        ip[7],
    )
}

#[test]
fn keepalived_vectors_decode_to_tcpdumps_reading_and_re_encode_byte_for_byte() {
    let vectors = load_vectors();
    let expected = expected();
    assert_eq!(vectors.len(), expected.len());
    for (vector, want) in vectors.iter().zip(&expected) {
        let what = &vector.capture;
        assert!(
            what.ends_with(want.capture_end),
            "table out of step: {what}"
        );
        assert_eq!(vector.ttl_or_hop_limit, 255, "{what}");

        // The IP layer: what a raw socket hands us, and the endpoints the checksum covers.
        let endpoints = match Family::of(&want.src) {
            Family::Ipv4 => {
                let ip = decode_ipv4_header(&vector.ip).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(ip.ttl, 255, "{what}");
                assert_eq!(ip.protocol, 112, "{what}");
                assert_eq!(IpAddr::from(ip.src), want.src, "{what}");
                assert_eq!(IpAddr::from(ip.dst), want.dst, "{what}");
                assert_eq!(ip.payload, vector.vrrp.as_slice(), "{what}");
                ip.endpoints()
            }
            Family::Ipv6 => {
                let (endpoints, hop_limit) = ipv6_endpoints(&vector.ip, &vector.vrrp);
                assert_eq!(hop_limit, 255, "{what}");
                endpoints
            }
        };
        assert_eq!(endpoints, ends(want.src, want.dst), "{what}");

        let decoded =
            decode(&vector.vrrp, endpoints, want.mode).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(decoded, want.advert, "{what}");

        let encoded = encode(&want.advert, endpoints, want.mode).expect("encodes");
        assert_eq!(hex_of(&encoded), hex_of(&vector.vrrp), "{what}");

        // keepalived's default includes the IPv4 pseudo-header; the other mode must refuse.
        let found = u16::from_be_bytes([vector.vrrp[6], vector.vrrp[7]]);
        let other = decode(&vector.vrrp, endpoints, other_mode(want.mode));
        match want.other_mode_checksum {
            Some(expected) => assert_eq!(
                other,
                Err(DecodeError::BadChecksum { expected, found }),
                "{what}"
            ),
            // v2 never uses a pseudo-header and v3 over IPv6 always does: the mode is moot.
            None => assert_eq!(other, Ok(want.advert.clone()), "{what}"),
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Every DecodeError, each on a concrete byte string.

/// An independent RFC 1071 checksum, so the error tests can forge valid-checksum packets
/// without trusting the code under test.
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recompute the checksum of a VRRP message (v2, or v3 with the IPv4 pseudo-header).
fn fix_checksum(message: &mut [u8], endpoints: Option<(Ipv4Addr, Ipv4Addr)>) {
    message[6..8].fill(0);
    let pseudo = match endpoints {
        Some((src, dst)) => [
            &src.octets()[..],
            &dst.octets(),
            &[0, IPPROTO_VRRP],
            &(message.len() as u16).to_be_bytes(),
        ]
        .concat(),
        None => Vec::new(),
    };
    let sum = internet_checksum(&[&pseudo, message]);
    message[6..8].copy_from_slice(&sum.to_be_bytes());
}

fn fix_ipv4_checksum(packet: &mut [u8]) {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].fill(0);
    let sum = internet_checksum(&[&packet[..header_len]]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// The variant's name; exhaustive so a new variant cannot be added without a case below.
fn variant(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::TooShort { .. } => "TooShort",
        DecodeError::BadVersion { .. } => "BadVersion",
        DecodeError::BadType { .. } => "BadType",
        DecodeError::MixedEndpointFamilies { .. } => "MixedEndpointFamilies",
        DecodeError::V2OverIpv6 => "V2OverIpv6",
        DecodeError::LengthMismatch { .. } => "LengthMismatch",
        DecodeError::BadChecksum { .. } => "BadChecksum",
        DecodeError::ZeroVrid => "ZeroVrid",
        DecodeError::ZeroInterval => "ZeroInterval",
        DecodeError::NoAddresses => "NoAddresses",
        DecodeError::UnsupportedAuthType { .. } => "UnsupportedAuthType",
        DecodeError::NotIpv4 { .. } => "NotIpv4",
        DecodeError::BadIpv4HeaderLength { .. } => "BadIpv4HeaderLength",
        DecodeError::Ipv4LengthMismatch { .. } => "Ipv4LengthMismatch",
        DecodeError::BadIpv4Checksum { .. } => "BadIpv4Checksum",
        DecodeError::Ipv4Fragment { .. } => "Ipv4Fragment",
    }
}

const ALL_VARIANTS: [&str; 16] = [
    "TooShort",
    "BadVersion",
    "BadType",
    "MixedEndpointFamilies",
    "V2OverIpv6",
    "LengthMismatch",
    "BadChecksum",
    "ZeroVrid",
    "ZeroInterval",
    "NoAddresses",
    "UnsupportedAuthType",
    "NotIpv4",
    "BadIpv4HeaderLength",
    "Ipv4LengthMismatch",
    "BadIpv4Checksum",
    "Ipv4Fragment",
];

#[test]
fn every_decode_error_comes_from_a_concrete_byte_string() {
    let vectors = load_vectors();
    let (v2_ip, v2) = (&vectors[0].ip, &vectors[0].vrrp);
    let (v3_ip, v3) = (&vectors[2].ip, &vectors[2].vrrp);
    let (v6_ip, v6m) = (&vectors[6].ip, &vectors[6].vrrp);
    let me = Ipv4Addr::new(192, 0, 2, 11);
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let e4 = ends(me.into(), group.into());
    let e6 = ends(v6("fe80::ac8c:d1ff:fed2:1394"), v6("ff02::12"));
    let pseudo = ChecksumMode::PseudoHeader;
    let with = |base: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = base.to_vec();
        f(&mut bytes);
        bytes
    };

    let cases: Vec<(&str, Result<_, DecodeError>, DecodeError)> = vec![
        // --- the VRRP message
        (
            "empty",
            decode(&[], e4, pseudo).map(drop),
            DecodeError::TooShort { len: 0, need: 8 },
        ),
        (
            "7 bytes of header",
            decode(&v3[..7], e4, pseudo).map(drop),
            DecodeError::TooShort { len: 7, need: 8 },
        ),
        (
            "version 1",
            decode(&with(v3, &|b| b[0] = 0x11), e4, pseudo).map(drop),
            DecodeError::BadVersion { found: 1 },
        ),
        (
            "version 4",
            decode(&with(v3, &|b| b[0] = 0x41), e4, pseudo).map(drop),
            DecodeError::BadVersion { found: 4 },
        ),
        (
            "type 2",
            decode(&with(v3, &|b| b[0] = 0x32), e4, pseudo).map(drop),
            DecodeError::BadType { found: 2 },
        ),
        (
            "type 0",
            decode(&with(v2, &|b| b[0] = 0x20), e4, pseudo).map(drop),
            DecodeError::BadType { found: 0 },
        ),
        (
            "IPv4 source, IPv6 destination",
            decode(v3, ends(me.into(), v6("ff02::12")), pseudo).map(drop),
            DecodeError::MixedEndpointFamilies {
                src: Family::Ipv4,
                dst: Family::Ipv6,
            },
        ),
        (
            "v2 over IPv6",
            decode(v2, e6, pseudo).map(drop),
            DecodeError::V2OverIpv6,
        ),
        (
            "v2 truncated by one address",
            decode(&v2[..20], e4, pseudo).map(drop),
            DecodeError::LengthMismatch {
                count: 2,
                expected: 24,
                len: 20,
            },
        ),
        (
            "v2 without its auth data",
            decode(&v2[..16], e4, pseudo).map(drop),
            DecodeError::LengthMismatch {
                count: 2,
                expected: 24,
                len: 16,
            },
        ),
        (
            "v3 with 4 trailing bytes",
            decode(&with(v3, &|b| b.extend([0; 4])), e4, pseudo).map(drop),
            DecodeError::LengthMismatch {
                count: 1,
                expected: 12,
                len: 16,
            },
        ),
        (
            "v3 count 2 with 1 address",
            decode(&with(v3, &|b| b[3] = 2), e4, pseudo).map(drop),
            DecodeError::LengthMismatch {
                count: 2,
                expected: 16,
                len: 12,
            },
        ),
        (
            "v3 IPv4 message under IPv6 endpoints",
            decode(v3, e6, pseudo).map(drop),
            DecodeError::LengthMismatch {
                count: 1,
                expected: 24,
                len: 12,
            },
        ),
        (
            "v3 IPv6 truncated",
            decode(&v6m[..23], e6, pseudo).map(drop),
            DecodeError::LengthMismatch {
                count: 1,
                expected: 24,
                len: 23,
            },
        ),
        (
            "flipped checksum bit",
            decode(&with(v3, &|b| b[7] ^= 1), e4, pseudo).map(drop),
            DecodeError::BadChecksum {
                expected: 0xa1f0,
                found: 0xa1f1,
            },
        ),
        (
            "priority changed, checksum not",
            decode(&with(v3, &|b| b[2] = 100), e4, pseudo).map(drop),
            DecodeError::BadChecksum {
                expected: 0x05f1,
                found: 0xa1f0,
            },
        ),
        (
            "v3 IPv4 pseudo-header packet decoded as v2-compatible",
            decode(v3, e4, ChecksumMode::V2Compatible).map(drop),
            DecodeError::BadChecksum {
                expected: 0x448b,
                found: 0xa1f0,
            },
        ),
        (
            "v3 IPv6 from another source",
            decode(v6m, ends(v6("fe80::1"), v6("ff02::12")), pseudo).map(drop),
            DecodeError::BadChecksum {
                expected: 0x3e38,
                found: 0xad45,
            },
        ),
        (
            "VRID 0",
            decode(
                &with(v3, &|b| {
                    b[1] = 0;
                    fix_checksum(b, Some((me, group)));
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::ZeroVrid,
        ),
        (
            "v3 interval 0",
            decode(
                &with(v3, &|b| {
                    b[4..6].fill(0);
                    fix_checksum(b, Some((me, group)));
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::ZeroInterval,
        ),
        (
            "v3 interval 0 under set reserved bits",
            decode(
                &with(v3, &|b| {
                    b[4..6].copy_from_slice(&[0xf0, 0]);
                    fix_checksum(b, Some((me, group)));
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::ZeroInterval,
        ),
        (
            "v2 interval 0",
            decode(
                &with(v2, &|b| {
                    b[5] = 0;
                    fix_checksum(b, None);
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::ZeroInterval,
        ),
        (
            "v3 count 0, no addresses",
            decode(
                &with(v3, &|b| {
                    b.truncate(8);
                    b[3] = 0;
                    fix_checksum(b, Some((me, group)));
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::NoAddresses,
        ),
        (
            "v2 count 0, auth data only",
            decode(
                &with(v2, &|b| {
                    b.drain(8..16);
                    b[3] = 0;
                    fix_checksum(b, None);
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::NoAddresses,
        ),
        (
            "v2 auth type 2 (IP AH)",
            decode(
                &with(v2, &|b| {
                    b[4] = 2;
                    fix_checksum(b, None);
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::UnsupportedAuthType { auth_type: 2 },
        ),
        (
            "v2 auth type 255",
            decode(
                &with(v2, &|b| {
                    b[4] = 255;
                    fix_checksum(b, None);
                }),
                e4,
                pseudo,
            )
            .map(drop),
            DecodeError::UnsupportedAuthType { auth_type: 255 },
        ),
        // --- the IPv4 header
        (
            "IPv4 header cut at 19 bytes",
            decode_ipv4_header(&v2_ip[..19]).map(drop),
            DecodeError::TooShort { len: 19, need: 20 },
        ),
        (
            "IHL 15 in a 44-byte packet",
            decode_ipv4_header(&with(v2_ip, &|b| b[0] = 0x4f)).map(drop),
            DecodeError::TooShort { len: 44, need: 60 },
        ),
        (
            "an IPv6 packet",
            decode_ipv4_header(v6_ip).map(drop),
            DecodeError::NotIpv4 { found: 6 },
        ),
        (
            "IHL 4",
            decode_ipv4_header(&with(v2_ip, &|b| b[0] = 0x44)).map(drop),
            DecodeError::BadIpv4HeaderLength { ihl: 4 },
        ),
        (
            "IPv4 packet one byte short of its total length",
            decode_ipv4_header(&v2_ip[..43]).map(drop),
            DecodeError::Ipv4LengthMismatch {
                total_length: 44,
                len: 43,
            },
        ),
        (
            "IPv4 packet with a trailing byte",
            decode_ipv4_header(&with(v3_ip, &|b| b.push(0))).map(drop),
            DecodeError::Ipv4LengthMismatch {
                total_length: 32,
                len: 33,
            },
        ),
        (
            "TTL 254 without fixing the header checksum",
            decode_ipv4_header(&with(v2_ip, &|b| b[8] = 254)).map(drop),
            DecodeError::BadIpv4Checksum {
                expected: 0x1983,
                found: 0x1883,
            },
        ),
        (
            "More Fragments set",
            decode_ipv4_header(&with(v2_ip, &|b| {
                b[6] = 0x20;
                fix_ipv4_checksum(b);
            }))
            .map(drop),
            DecodeError::Ipv4Fragment {
                offset: 0,
                more_fragments: true,
            },
        ),
        (
            "last fragment at offset 8",
            decode_ipv4_header(&with(v2_ip, &|b| {
                b[7] = 1;
                fix_ipv4_checksum(b);
            }))
            .map(drop),
            DecodeError::Ipv4Fragment {
                offset: 1,
                more_fragments: false,
            },
        ),
    ];

    let mut seen = BTreeSet::new();
    for (what, got, want) in &cases {
        assert_eq!(got.as_ref().err(), Some(want), "{what}");
        // Recorded malformed packets go through serde; every variant must survive it.
        let json = serde_json::to_string(want).unwrap();
        assert_eq!(
            &serde_json::from_str::<DecodeError>(&json).unwrap(),
            want,
            "{json}"
        );
        assert!(!want.to_string().is_empty());
        seen.insert(variant(want));
    }
    let all: BTreeSet<_> = ALL_VARIANTS.into_iter().collect();
    assert_eq!(seen, all, "variants without a concrete case");

    // Sanity: the fixers forge packets the codec accepts, so the cases above fail for the
    // field they change and not for a checksum.
    let forged = with(v3, &|b| {
        b[2] = 100;
        fix_checksum(b, Some((me, group)));
    });
    assert_eq!(decode(&forged, e4, pseudo).map(|a| a.priority), Ok(100));
    let forged = with(v2_ip, &|b| {
        b[8] = 254;
        fix_ipv4_checksum(b);
    });
    assert_eq!(decode_ipv4_header(&forged).map(|p| p.ttl), Ok(254));
}

#[test]
fn v2_auth_data_is_ignored_without_authentication() {
    // RFC 3768 §5.3.10: with Auth Type 0 the data "SHOULD be set to zero on transmission
    // and ignored on reception".
    let vectors = load_vectors();
    let e4 = ends(v4("192.0.2.11"), v4("224.0.0.18"));
    let mut bytes = vectors[0].vrrp.clone();
    bytes[4] = 0;
    fix_checksum(&mut bytes, None);
    let decoded = decode(&bytes, e4, ChecksumMode::PseudoHeader).unwrap();
    assert_eq!(decoded.auth, Auth::None);
    let reencoded = encode(&decoded, e4, ChecksumMode::PseudoHeader).unwrap();
    assert_eq!(reencoded[16..], [0; 8]);
}

// ---------------------------------------------------------------------------------------
// Robustness: random and mutated input never panics, and the round-trip law holds.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, deterministic, good enough to pick bytes.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

#[derive(Debug, Default)]
struct Stats {
    rejected: u64,
    exact: u64,
    normalised: u64,
    ipv4_ok: u64,
}

/// The round-trip law: whatever decodes re-encodes to the same bytes. The only information
/// `decode` drops on purpose is allowed to differ: v3 reserved bits (RFC 5798 §5.2.6), v2
/// auth data under Auth Type 0 (RFC 3768 §5.3.10) and which one's complement zero a zero
/// checksum was written as. Anything else decoding Ok with other bytes would mean a field
/// escaped the checksum or the parser.
fn check_law(bytes: &[u8], endpoints: Endpoints, mode: ChecksumMode, stats: &mut Stats) -> bool {
    let Ok(advert) = decode(bytes, endpoints, mode) else {
        stats.rejected += 1;
        return false;
    };
    let reencoded = encode(&advert, endpoints, mode)
        .unwrap_or_else(|e| panic!("decoded {advert:?} does not re-encode: {e}"));
    if reencoded == bytes {
        stats.exact += 1;
        return true;
    }
    assert_eq!(
        decode(&reencoded, endpoints, mode).as_ref(),
        Ok(&advert),
        "{bytes:02x?}"
    );
    assert_eq!(reencoded.len(), bytes.len(), "{bytes:02x?}");
    let v2_no_auth = advert.version == Version::V2 && bytes[4] == 0;
    let auth_start = bytes.len() - 8;
    let mut explained = false;
    for (i, (&got, &want)) in reencoded.iter().zip(bytes).enumerate() {
        if got == want {
            continue;
        }
        match i {
            4 if advert.version == Version::V3 => {
                assert_eq!(
                    got,
                    want & 0x0f,
                    "only reserved bits may differ: {bytes:02x?}"
                );
                explained = true;
            }
            6 | 7 => {}
            i if v2_no_auth && i >= auth_start => {
                assert_eq!(got, 0);
                explained = true;
            }
            _ => panic!("byte {i} differs after a round trip of {bytes:02x?}"),
        }
    }
    if !explained {
        // Only the checksum differs: it must be the other zero.
        assert_eq!(
            (&reencoded[6..8], &bytes[6..8]),
            (&[0u8, 0][..], &[0xffu8, 0xff][..]),
            "{bytes:02x?}"
        );
    }
    stats.normalised += 1;
    true
}

/// Run an IPv4 packet through the raw-socket path: header, then the VRRP payload.
fn check_ipv4_pipeline(packet: &[u8], mode: ChecksumMode, stats: &mut Stats) -> bool {
    match decode_ipv4_header(packet) {
        Ok(ip) => {
            stats.ipv4_ok += 1;
            let header_len = usize::from(packet[0] & 0x0f) * 4;
            assert_eq!(ip.payload, &packet[header_len..]);
            assert_eq!(
                usize::from(u16::from_be_bytes([packet[2], packet[3]])),
                packet.len()
            );
            check_law(ip.payload, ip.endpoints(), mode, stats)
        }
        Err(_) => {
            stats.rejected += 1;
            false
        }
    }
}

fn mutate(rng: &mut SplitMix64, original: &[u8]) -> (Vec<u8>, bool) {
    let mut bytes = original.to_vec();
    let single = match rng.below(8) {
        // One byte replaced by another value.
        0 | 1 => {
            let i = rng.below(bytes.len());
            bytes[i] = bytes[i].wrapping_add(1 + rng.below(255) as u8);
            true
        }
        // One bit flipped.
        2 | 3 => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
            true
        }
        // 2 to 6 bytes overwritten, possibly the same one twice.
        4 | 5 => {
            for _ in 0..2 + rng.below(5) {
                let i = rng.below(bytes.len());
                bytes[i] = rng.byte();
            }
            false
        }
        // A 16-bit word swapped between the one's complement zeros, plus maybe a byte: the
        // mutations a one's complement checksum is blind to.
        6 => {
            let i = rng.below(bytes.len() / 2) * 2;
            for b in &mut bytes[i..i + 2] {
                *b = if *b == 0 { 0xff } else { 0 };
            }
            if rng.below(2) == 0 {
                let j = rng.below(bytes.len());
                bytes[j] = rng.byte();
            }
            false
        }
        // Truncated or extended.
        _ => {
            if rng.below(2) == 0 {
                bytes.truncate(rng.below(bytes.len()));
            } else {
                let extra = 1 + rng.below(20);
                bytes.extend(rng.bytes(extra));
            }
            false
        }
    };
    (bytes, single)
}

#[test]
fn random_and_mutated_input_never_panics_and_round_trips() {
    const ITERATIONS: usize = 200_000;
    let vectors = load_vectors();
    let expected = expected();
    let mut rng = SplitMix64(0x5eed_5eed_5eed_5eed);
    let mut stats = Stats::default();
    let endpoint_choices = [
        ends(v4("192.0.2.11"), v4("224.0.0.18")),
        ends(v4("192.0.2.11"), v4("192.0.2.12")),
        ends(v6("fe80::ac8c:d1ff:fed2:1394"), v6("ff02::12")),
        ends(v4("192.0.2.11"), v6("ff02::12")),
    ];
    let modes = [ChecksumMode::PseudoHeader, ChecksumMode::V2Compatible];
    let mut mutants_ok = 0u64;

    for _ in 0..ITERATIONS {
        match rng.below(4) {
            // Random bytes, half of them with a plausible first byte and length so they get
            // past the version, type and length checks into the checksum.
            0 => {
                let endpoints = endpoint_choices[rng.below(endpoint_choices.len())];
                let mode = modes[rng.below(2)];
                let len = rng.below(72);
                let mut bytes = rng.bytes(len);
                if rng.below(2) == 0 && bytes.len() >= 8 {
                    bytes[0] = [0x21, 0x31][rng.below(2)];
                    bytes[3] = rng.below(4) as u8;
                }
                check_law(&bytes, endpoints, mode, &mut stats);
                let len = rng.below(64);
                let mut packet = rng.bytes(len);
                if rng.below(2) == 0 && packet.len() >= 20 {
                    packet[0] = 0x45;
                    let total_length = (packet.len() as u16).to_be_bytes();
                    packet[2..4].copy_from_slice(&total_length);
                    if rng.below(2) == 0 {
                        fix_ipv4_checksum(&mut packet);
                    }
                }
                check_ipv4_pipeline(&packet, mode, &mut stats);
            }
            // Mutations of the VRRP message of a real vector.
            1 | 2 => {
                let k = rng.below(vectors.len());
                let (bytes, single) = mutate(&mut rng, &vectors[k].vrrp);
                if bytes == vectors[k].vrrp {
                    continue;
                }
                let endpoints = ends(expected[k].src, expected[k].dst);
                let ok = check_law(&bytes, endpoints, expected[k].mode, &mut stats);
                // A one's complement sum catches every change confined to one byte.
                assert!(
                    !(single && ok),
                    "single-byte mutation accepted: {bytes:02x?}"
                );
                mutants_ok += u64::from(ok);
            }
            // Mutations of a whole IPv4 packet, through the raw-socket path.
            _ => {
                let k = rng.below(6); // the IPv4 vectors
                let (packet, single) = mutate(&mut rng, &vectors[k].ip);
                if packet == vectors[k].ip {
                    continue;
                }
                let ok = check_ipv4_pipeline(&packet, expected[k].mode, &mut stats);
                assert!(
                    !(single && ok),
                    "single-byte mutation accepted: {packet:02x?}"
                );
                mutants_ok += u64::from(ok);
            }
        }
    }
    eprintln!("{stats:?}, mutants accepted: {mutants_ok}");
    // The run must exercise every outcome, or it proves less than it claims.
    assert!(stats.rejected > 0 && stats.exact > 0 && stats.ipv4_ok > 0);
}

#[test]
fn random_adverts_round_trip_and_reject_every_single_byte_change() {
    let mut rng = SplitMix64(42);
    let endpoint_choices = [
        ends(v4("192.0.2.11"), v4("224.0.0.18")),
        ends(v6("fe80::1"), v6("ff02::12")),
    ];
    for _ in 0..5_000 {
        let endpoints = endpoint_choices[rng.below(2)];
        let family = Family::of(&endpoints.src);
        let version = if family == Family::Ipv4 && rng.below(2) == 0 {
            Version::V2
        } else {
            Version::V3
        };
        let (max_adver_int, auth) = match version {
            Version::V2 => (
                Centis::from_seconds(1 + rng.below(255) as u8),
                match rng.below(2) {
                    0 => Auth::None,
                    _ => Auth::SimplePassword(rng.bytes(8).try_into().unwrap()),
                },
            ),
            Version::V3 => (Centis::new(1 + rng.below(4095) as u16), Auth::None),
        };
        let addresses = (0..1 + rng.below(12))
            .map(|_| match family {
                Family::Ipv4 => IpAddr::from(<[u8; 4]>::try_from(rng.bytes(4)).unwrap()),
                Family::Ipv6 => IpAddr::from(<[u8; 16]>::try_from(rng.bytes(16)).unwrap()),
            })
            .collect();
        let advert = Advertisement {
            version,
            vrid: 1 + rng.below(255) as u8,
            priority: rng.byte(),
            max_adver_int,
            addresses,
            auth,
        };
        let mode = [ChecksumMode::PseudoHeader, ChecksumMode::V2Compatible][rng.below(2)];
        let bytes = encode(&advert, endpoints, mode).unwrap();
        assert_eq!(decode(&bytes, endpoints, mode).as_ref(), Ok(&advert));
        let mut mutated = bytes.clone();
        let i = rng.below(bytes.len());
        mutated[i] ^= 1 + rng.below(255) as u8;
        assert!(
            decode(&mutated, endpoints, mode).is_err(),
            "byte {i} of {advert:?}"
        );
    }
}
