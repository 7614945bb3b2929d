//! The DNS that DNS_CHECK speaks (RFC 1035): one query out, a header and question in.
//!
//! keepalived (`check_dns.c`) sends a recursion-desired query for `name`/`type`/IN and counts
//! the server up when a reply with the query's id, the QR bit and RCODE 0 arrives; shorter
//! datagrams, other ids and queries are ignored while waiting. We read the same fields and,
//! in addition, the first question: when the reply carries one it must be the question we
//! asked (RFC 1035 §7.3), so a stray answer to something else does not count.
//!
//! Every length is checked before a byte is read; nothing here panics on any input (fuzzed:
//! `fuzz/fuzz_targets/dns_response.rs`).

use flotilla_config::model::lvs::DnsType;

/// The fixed header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// The longest name on the wire, length octets included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The largest datagram read: a plain (non-EDNS) DNS message over UDP (RFC 1035 §4.2.1).
pub const MAX_UDP_LEN: usize = 512;

const FLAG_QR: u16 = 0x8000;
const FLAG_RD: u16 = 0x0100;
const CLASS_IN: u16 = 1;
/// Compression pointers a name may follow; more means a loop (each must point backwards,
/// so this only bounds the work).
const MAX_POINTERS: usize = 64;

/// The QTYPE of a model record type (RFC 1035 §3.2.2, RFC 3596, RFC 4034).
pub fn qtype(t: DnsType) -> u16 {
    match t {
        DnsType::A => 1,
        DnsType::Ns => 2,
        DnsType::Cname => 5,
        DnsType::Soa => 6,
        DnsType::Mx => 15,
        DnsType::Txt => 16,
        DnsType::Aaaa => 28,
        DnsType::Rrsig => 46,
        DnsType::Dnskey => 48,
    }
}

/// What is wrong with a name to query or a message received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("empty label in name '{0}'")]
    EmptyLabel(String),
    #[error("label longer than 63 octets in name '{0}'")]
    LabelTooLong(String),
    #[error("name longer than 255 octets")]
    NameTooLong,
    #[error("message of {0} bytes is shorter than the 12-byte header")]
    ShortHeader(usize),
    #[error("message ends inside the question at byte {0}")]
    Truncated(usize),
    #[error("label type 0x{0:02x} is not a length or a pointer")]
    BadLabelType(u8),
    #[error("compression pointer at byte {at} does not point backwards (to {to})")]
    ForwardPointer { at: usize, to: usize },
    #[error("more than 64 compression pointers in one name")]
    TooManyPointers,
}

/// The response code (RFC 1035 §4.1.1, RFC 6895 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    Other(u8),
}

impl Rcode {
    fn from_bits(v: u8) -> Self {
        match v {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            n => Rcode::Other(n),
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(n) => n,
        }
    }
}

impl std::fmt::Display for Rcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rcode::NoError => f.write_str("NOERROR"),
            Rcode::FormErr => f.write_str("FORMERR"),
            Rcode::ServFail => f.write_str("SERVFAIL"),
            Rcode::NxDomain => f.write_str("NXDOMAIN"),
            Rcode::NotImp => f.write_str("NOTIMP"),
            Rcode::Refused => f.write_str("REFUSED"),
            Rcode::Other(n) => write!(f, "RCODE {n}"),
        }
    }
}

/// A question: the name in uncompressed wire form, lower-cased, and its type and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

/// The name `name` (dotted, `.` for the root, a trailing dot optional) in uncompressed wire
/// form, lower-cased so it compares with names read back.
pub fn encode_name(name: &str) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(name.len() + 2);
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(DnsError::EmptyLabel(name.to_owned()));
            }
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| usize::from(*l) <= MAX_LABEL_LEN)
                .ok_or_else(|| DnsError::LabelTooLong(name.to_owned()))?;
            out.push(len);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    out.push(0);
    if out.len() > MAX_NAME_LEN {
        return Err(DnsError::NameTooLong);
    }
    Ok(out)
}

/// A recursion-desired query for `name`, type `qtype`, class IN, as keepalived sends it.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let qname = encode_name(name)?;
    let mut out = Vec::with_capacity(HEADER_LEN + qname.len() + 4);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    out.extend_from_slice(&qname);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// The parts of a received message DNS_CHECK looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    /// QR: this is a response.
    pub is_response: bool,
    pub rcode: Rcode,
    pub qdcount: u16,
    /// The first question, when QDCOUNT is not 0.
    pub question: Option<Question>,
}

impl Message {
    /// Reads the header and the first question; the other sections are not needed.
    pub fn parse(buf: &[u8]) -> Result<Message, DnsError> {
        let header = buf
            .get(..HEADER_LEN)
            .ok_or(DnsError::ShortHeader(buf.len()))?;
        let id = u16::from_be_bytes([header[0], header[1]]);
        let flags = u16::from_be_bytes([header[2], header[3]]);
        let qdcount = u16::from_be_bytes([header[4], header[5]]);
        let question = if qdcount == 0 {
            None
        } else {
            let (name, end) = read_name(buf, HEADER_LEN)?;
            let fixed = buf
                .get(end..end + 4)
                .ok_or(DnsError::Truncated(buf.len()))?;
            Some(Question {
                name,
                qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
                qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
            })
        };
        Ok(Message {
            id,
            is_response: flags & FLAG_QR != 0,
            // The low 4 bits of the flags word (RFC 1035 §4.1.1).
            rcode: Rcode::from_bits((flags & 0x000f) as u8),
            qdcount,
            question,
        })
    }
}

/// Reads a possibly compressed name starting at `start`: the name in uncompressed wire form
/// (lower-cased) and the offset just past it in the message.
fn read_name(buf: &[u8], start: usize) -> Result<(Vec<u8>, usize), DnsError> {
    let mut out = Vec::new();
    let mut pos = start;
    // Where the name ends in the message: after the first pointer, or after the root label.
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *buf.get(pos).ok_or(DnsError::Truncated(buf.len()))?;
        match len & 0xc0 {
            0x00 => {
                let n = usize::from(len);
                if out.len() + 1 + n > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                out.push(len);
                if n == 0 {
                    return Ok((out, end.unwrap_or(pos + 1)));
                }
                let label = buf
                    .get(pos + 1..pos + 1 + n)
                    .ok_or(DnsError::Truncated(buf.len()))?;
                out.extend(label.iter().map(|b| b.to_ascii_lowercase()));
                pos += 1 + n;
            }
            0xc0 => {
                let low = *buf.get(pos + 1).ok_or(DnsError::Truncated(buf.len()))?;
                let to = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                // Only backwards: with the pointer bound this cannot loop.
                if to >= pos {
                    return Err(DnsError::ForwardPointer { at: pos, to });
                }
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(DnsError::TooManyPointers);
                }
                end.get_or_insert(pos + 2);
                pos = to;
            }
            _ => return Err(DnsError::BadLabelType(len)),
        }
    }
}

/// How a received datagram answers the query `(id, question)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Our answer with RCODE NOERROR: the server is up.
    Answered,
    /// Our answer with an error RCODE: the server is down.
    Error(Rcode),
    /// Not ours (too short, malformed, another id or question, a query): keep waiting, as
    /// keepalived does.
    Ignore,
}

/// Judges one datagram received after sending `id`/`question`.
pub fn judge(buf: &[u8], id: u16, question: &Question) -> Verdict {
    let Ok(msg) = Message::parse(buf) else {
        return Verdict::Ignore;
    };
    if msg.id != id || !msg.is_response {
        return Verdict::Ignore;
    }
    if let Some(q) = &msg.question
        && q != question
    {
        return Verdict::Ignore;
    }
    match msg.rcode {
        Rcode::NoError => Verdict::Answered,
        other => Verdict::Error(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(name: &str, t: u16) -> Question {
        Question {
            name: encode_name(name).unwrap(),
            qtype: t,
            qclass: CLASS_IN,
        }
    }

    /// A response to `query` with `rcode`: the query with QR set, as a real server echoes it.
    fn respond(query: &[u8], rcode: u8) -> Vec<u8> {
        let mut r = query.to_vec();
        r[2] |= 0x80;
        r[3] = (r[3] & 0xf0) | rcode;
        r
    }

    #[test]
    fn encodes_like_keepalived() {
        let m = encode_query(0x1234, "Example.com", 1).unwrap();
        assert_eq!(
            m,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p',
                b'l', b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1
            ]
        );
        // The root, with or without its dot.
        assert_eq!(encode_name(".").unwrap(), vec![0]);
        assert_eq!(encode_name("").unwrap(), vec![0]);
        assert_eq!(encode_name("a.").unwrap(), encode_name("a").unwrap());
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(encode_name("a..b"), Err(DnsError::EmptyLabel(_))));
        assert!(matches!(
            encode_name(&"x".repeat(64)),
            Err(DnsError::LabelTooLong(_))
        ));
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(encode_name(&long), Err(DnsError::NameTooLong));
    }

    #[test]
    fn judges_responses() {
        let query = encode_query(7, "example.com", 6).unwrap();
        let question = q("example.com", 6);
        assert_eq!(judge(&respond(&query, 0), 7, &question), Verdict::Answered);
        assert_eq!(
            judge(&respond(&query, 3), 7, &question),
            Verdict::Error(Rcode::NxDomain)
        );
        assert_eq!(
            judge(&respond(&query, 2), 7, &question),
            Verdict::Error(Rcode::ServFail)
        );
        // Another id, the query itself, a short datagram, another question.
        assert_eq!(judge(&respond(&query, 0), 8, &question), Verdict::Ignore);
        assert_eq!(judge(&query, 7, &question), Verdict::Ignore);
        assert_eq!(judge(&query[..11], 7, &question), Verdict::Ignore);
        assert_eq!(
            judge(&respond(&query, 0), 7, &q("example.org", 6)),
            Verdict::Ignore
        );
        // Case does not matter (RFC 1035 §2.3.3).
        let upper = encode_query(7, "EXAMPLE.com", 6).unwrap();
        assert_eq!(judge(&respond(&upper, 0), 7, &question), Verdict::Answered);
        // A bare header (no question) is judged on the header alone, as keepalived does.
        let mut bare = respond(&query, 0)[..HEADER_LEN].to_vec();
        bare[5] = 0;
        assert_eq!(judge(&bare, 7, &question), Verdict::Answered);
    }

    #[test]
    fn follows_backward_pointers_and_refuses_loops() {
        // Header, then at 12 a name "a" and a question whose name points at it.
        let mut m = vec![0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(
            Message::parse(&m),
            Err(DnsError::ForwardPointer { at: 12, to: 12 })
        );
        let mut m = vec![0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0x40]);
        assert_eq!(Message::parse(&m), Err(DnsError::BadLabelType(0x40)));
        let mut m = vec![0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[3, b'a', b'b']);
        assert_eq!(Message::parse(&m), Err(DnsError::Truncated(15)));
    }

    #[test]
    fn reads_a_compressed_question() {
        // "com" at offset 12, then "example" + a pointer back to it.
        let mut m = vec![0, 9, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[3, b'c', b'o', b'm', 0]);
        let start = m.len();
        m.extend_from_slice(&[7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0xc0, 12]);
        m.extend_from_slice(&[0, 6, 0, 1]);
        let (name, end) = read_name(&m, start).unwrap();
        assert_eq!(name, encode_name("example.com").unwrap());
        assert_eq!(end, start + 10);
    }

    proptest! {
        #[test]
        fn never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(m) = Message::parse(&buf)
                && let Some(q) = m.question
            {
                prop_assert!(q.name.len() <= MAX_NAME_LEN);
            }
        }

        #[test]
        fn a_query_reads_back(
            labels in proptest::collection::vec("[a-zA-Z0-9-]{1,20}", 0..6),
            id in any::<u16>(),
            t in any::<u16>(),
        ) {
            let name = labels.join(".");
            let query = encode_query(id, &name, t).unwrap();
            let m = Message::parse(&query).unwrap();
            prop_assert_eq!(m.id, id);
            prop_assert!(!m.is_response);
            prop_assert_eq!(m.question, Some(q(&name, t)));
            prop_assert_eq!(judge(&respond(&query, 0), id, &q(&name, t)), Verdict::Answered);
        }
    }
}
