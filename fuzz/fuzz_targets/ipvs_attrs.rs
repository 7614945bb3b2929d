//! Arbitrary bytes into the IPVS attribute decoders (what the kernel sends back): they must
//! never panic, and whatever they accept must survive encode → decode unchanged.
#![no_main]

use flotilla_ipvs::Family;
use flotilla_ipvs::attr::{
    decode_daemon, decode_destination, decode_info, decode_service, encode_daemon,
    encode_destination, encode_service,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = decode_service(data) {
        let again = decode_service(&encode_service(&s.service, true)).map(|e| e.service);
        assert_eq!(again.ok(), Some(s.service));
    }
    for family in [Family::Inet, Family::Inet6] {
        if let Ok(d) = decode_destination(data, family) {
            let bytes = encode_destination(&d.destination, family, true);
            let again = decode_destination(&bytes, family).map(|e| e.destination);
            assert_eq!(again.ok(), Some(d.destination));
        }
    }
    if let Ok(d) = decode_daemon(data) {
        assert_eq!(decode_daemon(&encode_daemon(&d)).ok(), Some(d));
    }
    let _ = decode_info(data);
});
