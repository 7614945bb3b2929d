//! Arbitrary bytes as a DNS_CHECK reply: the header and question reader must never panic,
//! every length is checked, and a name it returns is never longer than DNS allows.
#![no_main]

use flotilla_check::dns::{self, MAX_NAME_LEN, Message, Question};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let asked = Question {
        name: dns::encode_name("example.com").expect("a valid name"),
        qtype: 6,
        qclass: 1,
    };
    // Let the input pick the id, so matching ids are reached too.
    let id = data.first().map_or(0, |b| u16::from_be_bytes([*b, *b]));
    let _ = dns::judge(data, id, &asked);
    if let Ok(m) = Message::parse(data)
        && let Some(q) = m.question
    {
        assert!(q.name.len() <= MAX_NAME_LEN);
    }
});
