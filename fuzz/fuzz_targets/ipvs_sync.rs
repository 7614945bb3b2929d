//! Arbitrary bytes into the IPVS connection-sync message parser (what a director's kernel
//! master daemon, or a peer over the mesh, hands flotilla): it must never panic, and whatever
//! parses must emit back to bytes that parse to the same message.
#![no_main]

use flotilla_ipvs::sync::SyncMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SyncMessage::parse(data) {
        let bytes = m.emit().expect("a parsed message emits");
        assert_eq!(SyncMessage::parse(&bytes).ok(), Some(m));
    }
});
