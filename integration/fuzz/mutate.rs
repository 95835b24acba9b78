//! The fuzzer's randomness and its mutations: a seeded SplitMix64 generator, byte-level
//! mutations for binary inputs and line/token-level ones for text inputs.
//!
//! Owns nothing but the transformation of one input (plus a second one to splice from) into
//! a new one. Everything is derived from the generator, so a seed replays a run exactly.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True once in `n` times on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A length biased towards short: mutations that touch a few bytes find more bugs per
    /// iteration than ones that rewrite half the input.
    fn short_len(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let bound = *self.pick(&[4, 16, 64, max]);
        1 + self.below(bound.min(max))
    }
}

/// Byte values that sit on boundaries parsers check: signs, lengths, NUL, all ones.
const INTERESTING_BYTES: &[u8] = &[
    0, 1, 2, 3, 4, 8, 16, 20, 32, 0x3f, 0x40, 0x7f, 0x80, 0xfe, 0xff,
];
const INTERESTING_WORDS: &[u16] = &[
    0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff,
];

/// Apply one to four stacked byte mutations to `input`; `other` is another corpus entry to
/// splice from.
pub fn mutate_bytes(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_bytes_once(rng, &mut data, other);
    }
    data
}

fn mutate_bytes_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    if data.is_empty() {
        let len = rng.short_len(32);
        data.extend(rng.bytes(len));
        return;
    }
    let at = rng.below(data.len());
    match rng.below(12) {
        0 => data[at] ^= 1 << rng.below(8),
        1 => data[at] = *rng.pick(INTERESTING_BYTES),
        2 => data[at] = rng.byte(),
        // A 16-bit field (lengths, counts, checksums) in either byte order, or the input's
        // own length, which length fields are most often compared with.
        3 => {
            let value = if rng.one_in(3) {
                data.len() as u16
            } else {
                *rng.pick(INTERESTING_WORDS)
            };
            let bytes = if rng.one_in(2) {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            for (offset, byte) in bytes.iter().enumerate() {
                if let Some(slot) = data.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
        4 => data[at] = data[at].wrapping_add(*rng.pick(&[1u8, 0xff, 2, 0xfe, 16])),
        5 => data.truncate(at),
        6 => {
            let len = rng.short_len(64);
            data.extend(rng.bytes(len));
        }
        7 => {
            let len = rng.short_len(16);
            let bytes = rng.bytes(len);
            data.splice(at..at, bytes);
        }
        // Delete a chunk.
        8 => {
            let end = (at + rng.short_len(data.len())).min(data.len());
            data.drain(at..end);
        }
        // Duplicate a chunk somewhere else.
        9 => {
            let end = (at + rng.short_len(data.len())).min(data.len());
            let chunk = data[at..end].to_vec();
            let to = rng.below(data.len() + 1);
            data.splice(to..to, chunk);
        }
        // Splice: this input's head with the other's tail.
        10 if !other.is_empty() => {
            let from = rng.below(other.len());
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        // Overwrite a chunk with one from the other input.
        _ if !other.is_empty() => {
            let from = rng.below(other.len());
            let len = rng.short_len(other.len() - from);
            for (offset, byte) in other[from..from + len].iter().enumerate() {
                if let Some(slot) = data.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
        _ => data[at] = !data[at],
    }
}

/// Fragments that break text formats: quoting, nesting, separators, numbers at type
/// limits, odd Unicode and control characters.
const TEXT_TOKENS: &[&str] = &[
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "{",
    "}",
    "[",
    "]",
    "[[",
    "]]",
    "=",
    ",",
    "#",
    "!",
    ":",
    ": ",
    ".",
    "\\",
    "\\u",
    "\\x",
    "$",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\0",
    "\u{1}",
    "\u{7f}",
    "é",
    "\u{202e}",
    "\u{1F600}",
    "\u{FEFF}",
    "\u{FFFD}",
    "0",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "4294967296",
    "18446744073709551616",
    "-9223372036854775809",
    "1e309",
    "nan",
    "inf",
    "0x10",
    "1.5",
    "true",
    "false",
    "\"\"",
    "{}",
    "[]",
    "0s",
    "1ms",
    "999999999d",
    "/",
    "/dev/null",
    "../",
    "*",
    "%",
    "%s",
    "${X}",
    "$X=",
    "::",
    "::1",
    "0.0.0.0",
    "255.255.255.255",
    "192.0.2.1/33",
    "fe80::1%eth0",
];

/// The most a long-run insertion adds: long enough to cross any fixed-size buffer or cut-off
/// in the parsers (they bound messages at 512 characters, packets at 1 MiB), short enough
/// that a debug build does thousands of such inputs a second.
const LONG_RUN_BYTES: usize = 16 * 1024;

/// Apply one to four stacked mutations, line- and token-aware two times in three, to the
/// text `input`; `other` is another corpus entry to splice from. `dictionary` holds words
/// taken from the seeds, so keys and keywords of the format come up often.
pub fn mutate_text(rng: &mut Rng, input: &[u8], other: &[u8], dictionary: &[String]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if rng.one_in(3) {
            mutate_bytes_once(rng, &mut data, other);
        } else {
            mutate_text_once(rng, &mut data, other, dictionary);
        }
    }
    data
}

fn mutate_text_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dictionary: &[String]) {
    let mut lines = split_lines(data);
    let line = rng.below(lines.len().max(1));
    match rng.below(10) {
        0 if !lines.is_empty() => {
            let copy = lines[line].clone();
            lines.insert(rng.below(lines.len() + 1), copy);
        }
        1 if !lines.is_empty() => {
            lines.remove(line);
        }
        2 if lines.len() > 1 => {
            let second = rng.below(lines.len());
            lines.swap(line, second);
        }
        // A line of the other input, so keys from one file meet the tables of another.
        3 => {
            let others = split_lines(other);
            if !others.is_empty() {
                let copy = rng.pick(&others).clone();
                lines.insert(rng.below(lines.len() + 1), copy);
            }
        }
        // A very long run: buffers, limits, quadratic behaviour.
        4 => {
            let unit = if rng.one_in(2) || dictionary.is_empty() {
                rng.pick(TEXT_TOKENS).to_string()
            } else {
                rng.pick(dictionary).clone()
            };
            let count = *rng.pick(&[64usize, 1000, 10_000]);
            let count = count.min(LONG_RUN_BYTES / unit.len().max(1)).max(1);
            insert_at(rng, data, unit.repeat(count).as_bytes());
            return;
        }
        5 | 6 => {
            let token = rng.pick(TEXT_TOKENS).as_bytes().to_vec();
            insert_at(rng, data, &token);
            return;
        }
        7 if !dictionary.is_empty() => {
            let word = rng.pick(dictionary).as_bytes().to_vec();
            insert_at(rng, data, &word);
            return;
        }
        // Replace one word of the text with a dictionary word or an odd token.
        _ => {
            let words = word_spans(data);
            if words.is_empty() {
                return;
            }
            let (start, end) = *rng.pick(&words);
            let replacement = if rng.one_in(2) && !dictionary.is_empty() {
                rng.pick(dictionary).clone()
            } else {
                rng.pick(TEXT_TOKENS).to_string()
            };
            data.splice(start..end, replacement.into_bytes());
            return;
        }
    }
    *data = lines.concat();
}

fn insert_at(rng: &mut Rng, data: &mut Vec<u8>, bytes: &[u8]) {
    let at = rng.below(data.len() + 1);
    data.splice(at..at, bytes.iter().copied());
}

/// Lines with their terminators, so joining them gives the input back.
fn split_lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Byte ranges of the runs of word characters (letters, digits, `_`, `-`, `.`).
fn word_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let mut spans = Vec::new();
    let mut start = None;
    for (at, &byte) in data.iter().enumerate() {
        match (start, is_word(byte)) {
            (None, true) => start = Some(at),
            (Some(from), false) => {
                spans.push((from, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        spans.push((from, data.len()));
    }
    spans
}

/// The distinct words of the seeds: the format's own keys and keywords.
pub fn dictionary(seeds: &[Vec<u8>]) -> Vec<String> {
    let mut words: Vec<String> = seeds
        .iter()
        .flat_map(|seed| {
            word_spans(seed)
                .into_iter()
                .map(move |(start, end)| String::from_utf8_lossy(&seed[start..end]).into_owned())
        })
        .filter(|word| word.len() <= 64)
        .collect();
    words.sort();
    words.dedup();
    words
}
