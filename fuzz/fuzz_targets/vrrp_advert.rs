//! Arbitrary bytes into the VRRP advert decoder: it must never panic, and anything it accepts
//! must survive emit → parse unchanged.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flotilla_vrrp::wire::{Advert, ChecksumMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pairs = [
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18))),
        (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        ),
    ];
    for (src, dst) in pairs {
        for mode in [ChecksumMode::PseudoHeader, ChecksumMode::MessageOnly] {
            if let Ok(a) = Advert::parse(data, src, dst, mode) {
                let again = a.emit(src, dst, mode);
                assert_eq!(Advert::parse(&again, src, dst, mode).ok(), Some(a));
            }
        }
    }
});
