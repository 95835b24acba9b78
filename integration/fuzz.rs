//! Fuzz targets for every parser that reads hostile input (issue 7, "Hostile input"): the
//! VRRP packet decoder, the config loader, HAProxy's `show stat` and `show info` parsers,
//! the MySQL packet parsers and framing reader, and the keepalived.conf importer.
//!
//! Each test mutates its seeds (`integration/fuzz/corpus/<target>/` plus the repository's
//! own examples and captures) with a seeded, coverage-less mutator (`fuzz/mutate.rs`) and
//! checks properties, not only the absence of panics: round trips, error positions inside
//! the input, outputs that read back, an independent model of what must be accepted. A
//! default run is a few thousand inputs per target; `scripts/fuzz` is the long run and
//! docs/fuzzing.md says how to replay a failure.

use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use vipkeeper::config::keepalived::import_text;
use vipkeeper::config::{effective_settings, parse_with_hostname, Config, ConfigError};
use vipkeeper::health::haproxy::{parse_info, parse_stat, split_csv, ParseError};
use vipkeeper::health::mysql::{
    parse_err, parse_greeting, parse_ok, Greeting, MysqlConnection, MysqlError, OkPacket,
    QueryOutcome, ServerError,
};
use vipkeeper::vrrp::packet::{
    decode, decode_ipv4_header, encode, Advertisement, Auth, ChecksumMode, DecodeError, Endpoints,
    IPPROTO_VRRP,
};
use vipkeeper::vrrp::Version;

#[path = "fuzz/engine.rs"]
mod engine;
#[path = "fuzz/mutate.rs"]
mod mutate;

use engine::{files_in, run, Kind, Target, Verdict};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read_all(paths: impl IntoIterator<Item = std::path::PathBuf>) -> Vec<Vec<u8>> {
    paths
        .into_iter()
        .map(|path| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Debug of an enum value up to its fields: the variant name, for outcome labels.
fn variant(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    let end = text.find(['(', ' ', '{']).unwrap_or(text.len());
    text[..end].to_string()
}

// ===== VRRP packets =====

/// The IP packets of keepalived 2.2.7's captures (`shared/vectors/`, beside the repository).
fn captured_ip_packets() -> Vec<Vec<u8>> {
    let path = repo("../shared/vectors/keepalived-2.2.7.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (shared/ must sit beside the repo)",
            path.display()
        )
    });
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value.get("vrrp")?;
            let hex = value["ip"].as_str().expect("ip");
            Some(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect(),
            )
        })
        .collect()
}

/// An IP packet split as the daemon's receive path sees it: endpoints and VRRP payload.
/// IPv4 goes through the crate's header decoder; IPv6 arrives without its header on a raw
/// socket, so the harness reads the fixed header itself.
fn split_ip(packet: &[u8]) -> Result<(Endpoints, &[u8]), String> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4_header(packet)
            .map(|ip| (ip.endpoints(), ip.payload))
            .map_err(|e| format!("ip4:{}", e.kind())),
        Some(6) if packet.len() >= 40 => {
            let payload_len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            if payload_len != packet.len() - 40 {
                return Err("ip6:length".into());
            }
            let src: [u8; 16] = packet[8..24].try_into().expect("16 bytes");
            let dst: [u8; 16] = packet[24..40].try_into().expect("16 bytes");
            let endpoints = Endpoints {
                src: Ipv6Addr::from(src).into(),
                dst: Ipv6Addr::from(dst).into(),
            };
            Ok((endpoints, &packet[40..]))
        }
        _ => Err("ip:other".into()),
    }
}

/// RFC 1071 sum, written here rather than borrowed from the codec so the two are compared.
fn ones_complement(chunks: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for chunk in chunks {
        for word in chunk.chunks(2) {
            sum += u64::from(u16::from_be_bytes([word[0], *word.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The checksum RFC 3768 §5.3.8 / RFC 5798 §5.2.8 give `message` (checksum field zeroed).
fn vrrp_checksum(message: &[u8], endpoints: Endpoints, mode: ChecksumMode) -> u16 {
    let mut zeroed = message.to_vec();
    zeroed[6..8].fill(0);
    let v3 = zeroed[0] >> 4 == 3;
    match (endpoints.src, endpoints.dst) {
        (IpAddr::V6(src), IpAddr::V6(dst)) if v3 => {
            let len = (zeroed.len() as u32).to_be_bytes();
            let tail = [0, 0, 0, IPPROTO_VRRP];
            ones_complement(&[&src.octets(), &dst.octets(), &len, &tail, &zeroed])
        }
        (IpAddr::V4(src), IpAddr::V4(dst)) if v3 && mode == ChecksumMode::PseudoHeader => {
            let len = (zeroed.len() as u16).to_be_bytes();
            let tail = [0, IPPROTO_VRRP, len[0], len[1]];
            ones_complement(&[&src.octets(), &dst.octets(), &tail, &zeroed])
        }
        _ => ones_complement(&[&zeroed]),
    }
}

/// Whether RFC 5798 §7.1 / RFC 3768 §7.1 accept `message` once its checksum is right: an
/// independent model of the decoder's field checks.
fn model_accepts(message: &[u8], ipv6: bool) -> Result<(), &'static str> {
    let [ver_type, vrid, _, count, hi0, hi1, _, _, ..] = *message else {
        return Err("too_short");
    };
    let version = ver_type >> 4;
    if version != 2 && version != 3 {
        return Err("bad_version");
    }
    if ver_type & 0x0f != 1 {
        return Err("bad_type");
    }
    if version == 2 && ipv6 {
        return Err("v2_over_ipv6");
    }
    let address_len = if ipv6 { 16 } else { 4 };
    let auth_len = if version == 2 { 8 } else { 0 };
    if message.len() != 8 + usize::from(count) * address_len + auth_len {
        return Err("length_mismatch");
    }
    if vrid == 0 {
        return Err("zero_vrid");
    }
    if count == 0 {
        return Err("no_addresses");
    }
    let interval = if version == 2 {
        u16::from(hi1)
    } else {
        u16::from_be_bytes([hi0, hi1]) & 0x0fff
    };
    if interval == 0 {
        return Err("zero_interval");
    }
    if version == 2 && hi0 > 1 {
        return Err("unsupported_auth_type");
    }
    Ok(())
}

/// Properties of one decode: an accepted message reports what its bytes say and re-encodes
/// to the same advert and (ignored fields aside) the same bytes.
fn check_decoded(
    message: &[u8],
    endpoints: Endpoints,
    mode: ChecksumMode,
    result: &Result<Advertisement, DecodeError>,
) -> Result<String, String> {
    let advert = match result {
        Ok(advert) => advert,
        Err(error) => return Ok(format!("err:{}", error.kind())),
    };
    let version = if advert.version == Version::V2 { 2 } else { 3 };
    if message[0] >> 4 != version
        || advert.vrid != message[1]
        || advert.priority != message[2]
        || advert.addresses.len() != usize::from(message[3])
    {
        return Err(format!(
            "decoded fields disagree with the bytes: {advert:?}"
        ));
    }
    if advert
        .addresses
        .iter()
        .any(|a| a.is_ipv4() != endpoints.src.is_ipv4())
    {
        return Err(format!("address of the wrong family: {advert:?}"));
    }
    if version == 3 && advert.auth != Auth::None {
        return Err(format!("v3 advert with authentication: {advert:?}"));
    }
    let encoded = encode(advert, endpoints, mode)
        .map_err(|e| format!("decode accepted what encode refuses ({e}): {advert:?}"))?;
    if encoded.len() != message.len() {
        return Err(format!(
            "re-encoded to {} bytes, received {}",
            encoded.len(),
            message.len()
        ));
    }
    let again = decode(&encoded, endpoints, mode);
    if again.as_ref() != Ok(advert) {
        return Err(format!(
            "round trip: {advert:?} re-encoded decodes to {again:?}"
        ));
    }
    // Bytes the decoder ignores: v3's reserved bits, v2's auth data without authentication;
    // the checksum covers them, so it is compared only when nothing else differs.
    let mut expected = message.to_vec();
    if version == 3 {
        expected[4] &= 0x0f;
    } else if advert.auth == Auth::None {
        let auth_start = expected.len() - 8;
        expected[auth_start..].fill(0);
    }
    let sum_of = |bytes: &[u8]| u16::from_be_bytes([bytes[6], bytes[7]]);
    let (received_sum, encoded_sum) = (sum_of(&expected), sum_of(&encoded));
    expected[6..8].copy_from_slice(&encoded[6..8]);
    if encoded != expected {
        return Err(format!(
            "re-encoded bytes differ: {encoded:02x?} for {message:02x?}"
        ));
    }
    // 0x0000 and 0xffff are the two one's complement zeros; both verify.
    if expected == message
        && received_sum != encoded_sum
        && !(received_sum == 0xffff && encoded_sum == 0)
    {
        return Err(format!(
            "checksum {received_sum:#06x} accepted, encoder writes {encoded_sum:#06x}"
        ));
    }
    Ok(format!(
        "ok:v{version}:{}",
        if endpoints.src.is_ipv4() { 4 } else { 6 }
    ))
}

/// Make a mutated packet's lengths and checksums right again, so that mutants reach the
/// field checks behind them: IPv4 total length, header length, header checksum, no
/// fragment bits; IPv6 payload length; and the VRRP checksum for `mode`.
fn repair(packet: &[u8], mode: ChecksumMode) -> Option<Vec<u8>> {
    let mut packet = packet.to_vec();
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let ihl = usize::from(packet[0] & 0x0f).clamp(5, packet.len() / 4);
            packet[0] = 0x40 | ihl as u8;
            let total = u16::try_from(packet.len()).ok()?.to_be_bytes();
            packet[2..4].copy_from_slice(&total);
            packet[6] &= 0x40;
            packet[7] = 0;
            packet[10..12].fill(0);
            let sum = ones_complement(&[&packet[..ihl * 4]]);
            packet[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        6 if packet.len() >= 40 => {
            let payload = u16::try_from(packet.len() - 40).ok()?.to_be_bytes();
            packet[4..6].copy_from_slice(&payload);
        }
        _ => return None,
    }
    let (endpoints, payload) = split_ip(&packet).ok()?;
    let offset = packet.len() - payload.len();
    if payload.len() < 8 {
        return Some(packet);
    }
    let sum = vrrp_checksum(payload, endpoints, mode);
    packet[offset + 6..offset + 8].copy_from_slice(&sum.to_be_bytes());
    Some(packet)
}

fn fuzz_vrrp_packet(input: &[u8]) -> Verdict {
    let modes = [ChecksumMode::PseudoHeader, ChecksumMode::V2Compatible];
    // As received: mostly refused by a length or checksum; never a panic, never a lie.
    let raw = match split_ip(input) {
        Ok((endpoints, message)) => {
            let mut labels = Vec::new();
            for mode in modes {
                let result = decode(message, endpoints, mode);
                labels.push(check_decoded(message, endpoints, mode, &result)?);
            }
            labels.join(",")
        }
        Err(label) => label,
    };
    // Repaired: the decoder must accept exactly what the model accepts.
    let mode = modes[usize::from(input.last().copied().unwrap_or(0) & 1)];
    let Some(repaired) = repair(input, mode) else {
        return Ok(raw);
    };
    let (endpoints, message) =
        split_ip(&repaired).map_err(|e| format!("repaired IP header refused: {e}"))?;
    let result = decode(message, endpoints, mode);
    let label = check_decoded(message, endpoints, mode, &result)?;
    let model = model_accepts(message, endpoints.src.is_ipv6());
    match (&result, model) {
        (Ok(_), Ok(())) => {}
        (Err(error), Err(kind)) if error.kind() == kind => {}
        // Too short for the 8-byte header: the decoder says so before the model's turn.
        (Err(DecodeError::TooShort { .. }), Err("too_short")) => {}
        _ => {
            return Err(format!(
                "decoder says {result:?}, the RFC model says {model:?} for {message:02x?}"
            ))
        }
    }
    Ok(format!("{raw}|{label}"))
}

#[test]
fn vrrp_packet() {
    let summary = run(
        Target {
            name: "vrrp_packet",
            kind: Kind::Binary,
            extra_seeds: captured_ip_packets(),
            default_iterations: 50_000,
        },
        fuzz_vrrp_packet,
    );
    summary.assert_reached("|ok:v3:6");
    summary.assert_reached("|ok:v2:4");
}

// ===== the config loader =====

/// The hostname the loader falls back on, fixed so results do not depend on the machine.
fn fuzz_hostname() -> Option<String> {
    Some("fuzz-node".to_string())
}

/// Every error carries `FILE:LINE:COL` inside the text and leads its message with it;
/// errors come in file order.
fn check_errors(text: &str, errors: &vipkeeper::config::ConfigErrors) -> Result<String, String> {
    if errors.is_empty() {
        return Err("Err with no error in it".into());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut previous = (0, 0);
    let mut first = None;
    for error in errors {
        let ConfigError::Invalid { at, problem, .. } = error else {
            return Err(format!("parsing text gave {error}"));
        };
        if at.file != "fuzz.toml" {
            return Err(format!("error names file {:?}: {error}", at.file));
        }
        let Some(line) = at.line.checked_sub(1).and_then(|i| lines.get(i)) else {
            return Err(format!(
                "line {} of a {}-line text: {error}",
                at.line,
                lines.len()
            ));
        };
        if at.column == 0 || at.column > line.chars().count() + 1 {
            return Err(format!("column {} on {line:?}: {error}", at.column));
        }
        if !error.to_string().starts_with(&format!("{at}: ")) {
            return Err(format!("message does not lead with FILE:LINE:COL: {error}"));
        }
        if (at.line, at.column) < previous {
            return Err(format!("errors out of file order at {at}"));
        }
        previous = (at.line, at.column);
        first.get_or_insert_with(|| variant(problem));
    }
    Ok(format!("err:{}", first.unwrap_or_default()))
}

/// The password is not printed by `check`, so it is not compared; warnings depend on it.
fn without_secrets(mut config: Config) -> Config {
    for instance in &mut config.instances {
        instance.auth = Auth::None;
    }
    config.warnings.clear();
    config
}

fn fuzz_config(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let config = match parse_with_hostname(&text, "fuzz.toml", fuzz_hostname) {
        Ok(config) => config,
        Err(errors) => return check_errors(&text, &errors),
    };
    // `check`'s effective settings claim to read back to the same configuration.
    let shown = effective_settings(&config);
    let again = parse_with_hostname(&shown, "fuzz.toml", fuzz_hostname)
        .map_err(|e| format!("effective settings refused:\n{e}\n---\n{shown}"))?;
    if without_secrets(again.clone()) != without_secrets(config.clone()) {
        return Err(format!(
            "effective settings read back differently:\n{shown}\n---\n{:#?}\n---\n{:#?}",
            without_secrets(config),
            without_secrets(again)
        ));
    }
    if effective_settings(&again)
        .lines()
        .filter(|l| !l.starts_with("# auth_pass"))
        .ne(shown.lines().filter(|l| !l.starts_with("# auth_pass")))
    {
        return Err(format!(
            "effective settings are not a fixed point:\n{shown}"
        ));
    }
    Ok(format!(
        "ok:{}i:{}c:{}g:{}w",
        config.instances.len().min(3),
        config.checks.len().min(3),
        config.groups.len().min(2),
        config.warnings.len().min(3),
    ))
}

#[test]
fn config() {
    let mut examples = Vec::new();
    for dir in subdirectories(&repo("examples")) {
        examples.extend(
            files_in(&dir)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "toml")),
        );
    }
    let summary = run(
        Target {
            name: "config",
            kind: Kind::Text,
            extra_seeds: read_all(examples),
            default_iterations: 3_000,
        },
        fuzz_config,
    );
    summary.assert_reached("ok:");
}

fn subdirectories(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

// ===== HAProxy `show stat` and `show info` =====

/// A field as HAProxy's `csv_enc` writes it: quoted only when it holds a comma or a quote.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// A line as HAProxy writes it: every field followed by a comma.
fn csv_line(fields: &[String]) -> String {
    fields.iter().map(|f| csv_field(f) + ",").collect()
}

/// The text with every non-blank line rewritten in HAProxy's canonical quoting. The first
/// one is the header only if it starts with `#`; otherwise it stays as it is, since
/// re-quoting `""#x` gives `#x,`, which would make a header of it.
fn canonical_stat(text: &str) -> String {
    let mut seen_first = false;
    text.lines()
        .map(|line| {
            if line.trim().is_empty() {
                return line.to_string();
            }
            let first = !std::mem::replace(&mut seen_first, true);
            match line.strip_prefix('#') {
                Some(rest) if first => format!("#{}", csv_line(&split_csv(rest))),
                _ if first => line.to_string(),
                _ => csv_line(&split_csv(line)),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn fuzz_haproxy_stat(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    // split_csv reads back what HAProxy's quoting writes, for every line of the input.
    for line in text.lines() {
        let fields = split_csv(line);
        let again = split_csv(&csv_line(&fields));
        if again != fields {
            return Err(format!(
                "split_csv({line:?}) = {fields:?}, re-quoted reads {again:?}"
            ));
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let non_blank: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i, *l))
        .collect();
    let result = parse_stat(&text);
    // The quoting of the input must not matter, only the fields it spells.
    let canonical = parse_stat(&canonical_stat(&text));
    match (&result, &canonical) {
        (Ok(a), Ok(b)) if a == b => {}
        (Err(a), Err(b)) if std::mem::discriminant(a) == std::mem::discriminant(b) => {}
        _ => return Err(format!("{result:?} but re-quoted {canonical:?}")),
    }
    let rows = match result {
        Ok(rows) => rows,
        Err(ParseError::Empty) if non_blank.is_empty() => return Ok("err:Empty".into()),
        Err(ParseError::NoHeader(start)) if !non_blank[0].1.starts_with('#') => {
            if start.chars().count() > 80 {
                return Err(format!("unbounded error text: {start:?}"));
            }
            return Ok("err:NoHeader".into());
        }
        Err(ParseError::MissingColumn(name)) => return Ok(format!("err:MissingColumn:{name}")),
        Err(ParseError::ShortRow { line, fields, .. }) => {
            let Some(text_line) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
                return Err(format!("ShortRow names line {line} of {}", lines.len()));
            };
            if split_csv(text_line).len() != fields || text_line.trim().is_empty() {
                return Err(format!(
                    "ShortRow {line}/{fields} does not match {text_line:?}"
                ));
            }
            return Ok("err:ShortRow".into());
        }
        Err(error) => return Err(format!("unexpected {error:?}")),
    };
    // Every non-blank line after the header is one row, with the fields the header promised.
    if rows.len() + 1 != non_blank.len() {
        return Err(format!(
            "{} rows from {} data lines",
            rows.len(),
            non_blank.len() - 1
        ));
    }
    let header = split_csv(&non_blank[0].1[1..]);
    let at = |name: &str| header.iter().position(|n| n.trim() == name).expect(name);
    let (px, sv, status, bck) = (
        at("pxname"),
        at("svname"),
        at("status"),
        header.iter().position(|n| n.trim() == "bck"),
    );
    for (row, (_, line)) in rows.iter().zip(&non_blank[1..]) {
        let fields = split_csv(line);
        let backup = bck
            .and_then(|i| fields.get(i))
            .is_some_and(|f| f.trim() == "1");
        if row.pxname != fields[px]
            || row.svname != fields[sv]
            || row.status != fields[status].trim()
            || row.backup != backup
        {
            return Err(format!("{row:?} from {line:?}"));
        }
    }
    Ok(format!("ok:{}rows", rows.len().min(4)))
}

#[test]
fn haproxy_stat() {
    let summary = run(
        Target {
            name: "haproxy_stat",
            kind: Kind::Text,
            extra_seeds: Vec::new(),
            default_iterations: 3_000,
        },
        fuzz_haproxy_stat,
    );
    summary.assert_reached("ok:");
}

fn fuzz_haproxy_info(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let info = match parse_info(&text) {
        Ok(info) => info,
        Err(ParseError::Empty) if text.trim().is_empty() => return Ok("err:Empty".into()),
        Err(ParseError::NotInfo(start)) if !text.trim().is_empty() => {
            if start.chars().count() > 80 {
                return Err(format!("unbounded error text: {start:?}"));
            }
            return Ok("err:NotInfo".into());
        }
        Err(error) => return Err(format!("unexpected {error:?}")),
    };
    // The last `Key: value` line of a key decides, as in HAProxy's own output order.
    let last = |key: &str| {
        text.lines()
            .filter_map(|line| line.split_once(": "))
            .rfind(|(k, _)| *k == key)
            .map(|(_, value)| value.trim())
    };
    let pid = last("Pid").and_then(|v| v.parse::<u32>().ok());
    let stopping = last("Stopping")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| v != 0);
    let version = last("Version").map(|v| v.chars().take(64).collect::<String>());
    if info.pid != pid || info.stopping != stopping || info.version != version {
        return Err(format!(
            "{info:?}, expected pid {pid:?}, stopping {stopping:?}, version {version:?}"
        ));
    }
    Ok(format!(
        "ok:{}",
        u8::from(pid.is_some()) + u8::from(stopping.is_some())
    ))
}

#[test]
fn haproxy_info() {
    let summary = run(
        Target {
            name: "haproxy_info",
            kind: Kind::Text,
            extra_seeds: Vec::new(),
            default_iterations: 5_000,
        },
        fuzz_haproxy_info,
    );
    summary.assert_reached("ok:");
}

// ===== MySQL =====

fn lenenc(value: u64) -> Vec<u8> {
    match value {
        0..=0xfa => vec![value as u8],
        0xfb..=0xffff => [&[0xfc][..], &(value as u16).to_le_bytes()].concat(),
        0x1_0000..=0xff_ffff => [&[0xfd][..], &(value as u32).to_le_bytes()[..3]].concat(),
        _ => [&[0xfe][..], &value.to_le_bytes()].concat(),
    }
}

fn encode_ok(ok: &OkPacket) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(lenenc(ok.affected_rows));
    out.extend(lenenc(ok.last_insert_id));
    out.extend(ok.status.to_le_bytes());
    out.extend(ok.warnings.to_le_bytes());
    out.extend(ok.info.as_bytes());
    out
}

fn encode_err(error: &ServerError) -> Vec<u8> {
    let mut out = vec![0xff];
    out.extend(error.code.to_le_bytes());
    if let Some(state) = &error.state {
        out.push(b'#');
        out.extend(state.as_bytes());
    }
    out.extend(error.message.as_bytes());
    out
}

/// HandshakeV10 in its 4.1 form with `greeting`'s fields.
fn encode_greeting(greeting: &Greeting) -> Vec<u8> {
    let mut out = vec![10];
    out.extend(greeting.server_version.as_bytes());
    out.push(0);
    out.extend(greeting.connection_id.to_le_bytes());
    out.extend(&greeting.scramble[..8]);
    out.push(0);
    out.extend((greeting.capabilities as u16).to_le_bytes());
    out.extend([33, 2, 0]);
    out.extend(((greeting.capabilities >> 16) as u16).to_le_bytes());
    out.push(21);
    out.extend([0; 10]);
    out.extend(&greeting.scramble[8..]);
    out.push(0);
    if greeting.capabilities & 0x0008_0000 != 0 {
        out.extend(greeting.auth_plugin.as_bytes());
        out.push(0);
    }
    out
}

/// Text the parsers made printable: no control characters, at most `max` plus an ellipsis.
fn printable(text: &str, max: usize) -> bool {
    !text.chars().any(char::is_control) && text.chars().count() <= max + 1
}

/// A pure parser only ever answers with a protocol error or, for ERR packets, the server's.
fn parser_error(what: &str, error: &MysqlError) -> Result<String, String> {
    match error {
        // The message without its numbers names the check that refused the bytes.
        MysqlError::Protocol(message) => {
            let reason = message.split(|c: char| c.is_ascii_digit()).next();
            Ok(format!("{what}:protocol:{}", reason.unwrap_or_default()))
        }
        MysqlError::Server(e) => Ok(format!("{what}:server:{}", e.name().unwrap_or("?"))),
        other => Err(format!("{what} parser returned {other:?}")),
    }
}

fn check_greeting(packet: &[u8]) -> Result<String, String> {
    let greeting = match parse_greeting(packet) {
        Ok(greeting) => greeting,
        Err(error) => return parser_error("greeting", &error),
    };
    if greeting.scramble.len() != 20
        || greeting.capabilities & 0x8000 == 0
        || !printable(&greeting.server_version, 128)
        || !printable(&greeting.auth_plugin, 64)
    {
        return Err(format!(
            "accepted greeting breaks its promises: {greeting:?}"
        ));
    }
    let again = parse_greeting(&encode_greeting(&greeting));
    if again.as_ref().ok() != Some(&greeting) {
        return Err(format!(
            "round trip: {greeting:?} re-encoded parses to {again:?}"
        ));
    }
    Ok("greeting:ok".into())
}

fn check_err(packet: &[u8]) -> Result<String, String> {
    let error = match parse_err(packet) {
        Ok(error) => error,
        Err(error) => return parser_error("err", &error),
    };
    if error.code != u16::from_le_bytes([packet[1], packet[2]])
        || !printable(&error.message, 512)
        || error.state.as_ref().is_some_and(|s| !printable(s, 5))
    {
        return Err(format!("accepted ERR breaks its promises: {error:?}"));
    }
    // Only a state that stayed 5 bytes through the lossy conversion reads back the same,
    // and without one, a message that now starts with `#` would be read as one.
    let state_intact = error.state.as_ref().is_none_or(|state| state.len() == 5);
    if state_intact && (error.state.is_some() || !error.message.starts_with('#')) {
        let again = parse_err(&encode_err(&error));
        if again.as_ref().ok() != Some(&error) {
            return Err(format!(
                "round trip: {error:?} re-encoded parses to {again:?}"
            ));
        }
    }
    Ok("err:ok".into())
}

fn check_ok(packet: &[u8]) -> Result<String, String> {
    let ok = match parse_ok(packet) {
        Ok(ok) => ok,
        Err(error) => return parser_error("ok", &error),
    };
    if !printable(&ok.info, 512) {
        return Err(format!("accepted OK breaks its promises: {ok:?}"));
    }
    let again = parse_ok(&encode_ok(&ok));
    if again.as_ref().ok() != Some(&ok) {
        return Err(format!("round trip: {ok:?} re-encoded parses to {again:?}"));
    }
    Ok("ok:ok".into())
}

fn fuzz_mysql_packet(input: &[u8]) -> Verdict {
    // Each parser sees the input as it is and with its own marker byte in front, so most
    // mutants get past the first byte of all three.
    let with_marker = |marker: u8| {
        let mut packet = input.to_vec();
        match packet.first_mut() {
            Some(first) => *first = marker,
            None => packet.push(marker),
        }
        packet
    };
    let labels = [
        check_greeting(input)?,
        check_err(input)?,
        check_ok(input)?,
        check_greeting(&with_marker(10))?,
        check_err(&with_marker(0xff))?,
        check_ok(&with_marker(0))?,
    ];
    Ok(labels[3..].join(","))
}

#[test]
fn mysql_packet() {
    let summary = run(
        Target {
            name: "mysql_packet",
            kind: Kind::Binary,
            extra_seeds: Vec::new(),
            default_iterations: 20_000,
        },
        fuzz_mysql_packet,
    );
    summary.assert_reached("greeting:ok");
}

/// The client's whole conversation (login, COM_PING, COM_QUERY) against a server that
/// sends `input` and closes its side: the framing reader sees every split of it.
fn fuzz_mysql_session(
    runtime: &tokio::runtime::Runtime,
    listener: &std::net::TcpListener,
    input: &[u8],
) -> Verdict {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = listener.local_addr().expect("address");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener.try_clone().expect("clone"))
            .expect("tokio listener");
        let server = async {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let _ = stream.write_all(input).await;
            let _ = stream.shutdown().await;
            // Read what the client sends until it closes, so it never meets a reset.
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        };
        let client =
            async {
                let timeout = Duration::from_secs(5);
                let mut steps = Vec::new();
                match MysqlConnection::connect(address, "fuzz", b"secret", timeout).await {
                    Ok(mut connection) => {
                        steps.push(Ok("login".to_string()));
                        steps.push(connection.ping().await.map(|()| "ping".to_string()));
                        steps.push(connection.query("SELECT 1").await.map(
                            |outcome| match outcome {
                                QueryOutcome::Ok { .. } => "query:ok".to_string(),
                                QueryOutcome::Rows { .. } => "query:rows".to_string(),
                                QueryOutcome::Err(_) => "query:err".to_string(),
                            },
                        ));
                    }
                    Err(error) => steps.push(Err(error)),
                }
                steps
            };
        let ((), steps) = tokio::join!(server, client);
        let mut labels = Vec::new();
        for step in steps {
            match step {
                Ok(label) => labels.push(label),
                // The server has closed its side: every read ends with data or EOF, so a
                // timeout means the reader waited for bytes that could never come.
                Err(error @ (MysqlError::Timeout { .. } | MysqlError::Connect(_))) => {
                    return Err(format!("{error}"))
                }
                Err(error) => labels.push(format!("e:{}", variant(&error))),
            }
        }
        Ok(labels.join(","))
    })
}

#[test]
fn mysql_session() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let summary = run(
        Target {
            name: "mysql_session",
            kind: Kind::Binary,
            extra_seeds: Vec::new(),
            default_iterations: 5_000,
        },
        |input| fuzz_mysql_session(&runtime, &listener, input),
    );
    summary.assert_reached("query:rows");
}

// ===== the keepalived.conf importer =====

fn fuzz_keepalived(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    // Relative includes resolve in the corpus, so `include conf.d/*.conf` finds its files.
    let import = match import_text(&text, &repo("integration/keepalived_corpus")) {
        Ok(import) => import,
        Err(error) => {
            let shown = error.to_string();
            if !shown.starts_with("keepalived.conf") && !shown.contains(".conf:") {
                return Err(format!("error without its file: {shown}"));
            }
            return Ok(format!("err:{}", variant(&error)));
        }
    };
    // The output is TOML at least; what `check` still refuses is reported as notes, one
    // per error, so the operator sees every one.
    if let Err(error) = import.toml.parse::<toml::Table>() {
        return Err(format!(
            "the importer wrote invalid TOML: {error}\n{}",
            import.toml
        ));
    }
    let refused =
        match parse_with_hostname(&import.toml, "converted.toml", || Some("imported".into())) {
            Ok(_) => 0,
            Err(errors) => errors.len(),
        };
    let noted = import
        .notes
        .iter()
        .filter(|n| n.file == "converted.toml")
        .count();
    if refused != noted {
        return Err(format!(
            "`check` refuses the output {refused} times, the notes say {noted}:\n{}",
            import.toml
        ));
    }
    // The output's shape is the label, so a mutant that converts to something new is kept.
    Ok(format!(
        "ok:{}:{}notes:{}i:{}c",
        if refused == 0 { "clean" } else { "noted" },
        import.notes.len().min(8),
        import.toml.matches("[[instance]]").count().min(4),
        import.toml.matches("\n[check.").count().min(4),
    ))
}

#[test]
fn keepalived() {
    let dir = repo("integration/keepalived_corpus");
    let mut seeds = files_in(&dir);
    seeds.extend(files_in(&dir.join("conf.d")));
    let summary = run(
        Target {
            name: "keepalived",
            kind: Kind::Text,
            extra_seeds: read_all(seeds),
            default_iterations: 3_000,
        },
        fuzz_keepalived,
    );
    summary.assert_reached("ok:clean");
}
