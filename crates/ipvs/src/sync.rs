//! The kernel's connection-sync message, version 1 (`net/netfilter/ipvs/ip_vs_sync.c`): what
//! an IPVS sync daemon in master state sends and one in backup state turns into connection
//! entries. Pure: bytes in, [`SyncMessage`] out, and back.
//!
//! A backup kernel creates connection entries from whatever reaches its socket, so flotilla
//! parses every message it forwards or injects and re-emits it from the parsed form: a
//! message that does not parse is dropped whole, never passed on. Every length is checked
//! before a field is read; the checks are at least the kernel's own (`ip_vs_process_message`,
//! `ip_vs_proc_sync_conn`), plus a few the kernel only logs (an unknown mandatory option, a
//! protocol it does not know), so nothing that leaves flotilla is half-understood.
//!
//! Layout (all big-endian):
//! ```text
//! header  | 0 | sync id | size (u16, whole message) | count | version=1 | spare=0 (u16) |
//! entry   | type (bit 0: IPv6) | protocol | ver<<12 | size (u16) | flags (u32) | state (u16)
//!         | cport | vport | dport | fwmark (u32) | timeout s (u32) | caddr vaddr daddr
//!         | options: kind (u8), length (u8), data …   (entries start 32-bit aligned)
//! ```
//! Version 0 messages (`net.ipv4.vs.sync_version = 0`) are refused: they cannot say IPv6,
//! firewall marks or timeouts, and every kernel since 2.6.39 sends version 1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The header: reserved, sync id, size, count, version, spare.
pub const HEADER_LEN: usize = 8;
/// An IPv4 entry without options.
pub const ENTRY_V4_LEN: usize = 36;
/// An IPv6 entry without options.
pub const ENTRY_V6_LEN: usize = 72;
/// `SYNC_PROTO_VER`.
pub const VERSION: u8 = 1;
/// Largest message: the size field is 16 bits.
pub const MAX_LEN: usize = u16::MAX as usize;
/// An entry's size field is 12 bits (`SVER_MASK`).
const ENTRY_MAX_LEN: usize = 0x0fff;

/// `IP_VS_CONN_F_TEMPLATE`: a persistence template, not a connection.
pub const FLAG_TEMPLATE: u32 = 0x1000;

/// Option kinds (`IPVS_OPT_*`); the 0x40 bit (`IPVS_OPT_F_PARAM`) marks an option a receiver
/// may skip.
pub const OPT_SEQ_DATA: u8 = 1;
pub const OPT_PE_DATA: u8 = 2;
pub const OPT_PE_NAME: u8 = 3;
pub const OPT_F_PARAM: u8 = 0x40;
/// `sizeof(struct ip_vs_sync_conn_options)`: two `ip_vs_seq` of three u32.
const SEQ_DATA_LEN: usize = 24;
/// `IP_VS_PEDATA_MAXLEN`, `IP_VS_PENAME_MAXLEN`.
const PE_DATA_MAX: usize = 255;
const PE_NAME_MAX: usize = 16;

/// IP protocols IPVS balances.
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;

/// One sync message: the master's sync id and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMessage {
    pub sync_id: u8,
    pub entries: Vec<SyncEntry>,
}

/// One connection entry (or persistence template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEntry {
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` as the master had them.
    pub flags: u32,
    /// The protocol's state number (e.g. TCP ESTABLISHED = 1).
    pub state: u16,
    pub client: IpAddr,
    pub client_port: u16,
    /// The virtual address: the VIP the client talked to.
    pub virtual_addr: IpAddr,
    pub virtual_port: u16,
    /// The real server chosen.
    pub dest: IpAddr,
    pub dest_port: u16,
    pub fwmark: u32,
    /// Seconds the entry lives without traffic (0: the protocol's default).
    pub timeout: u32,
    /// Options in the order sent, each checked.
    pub options: Vec<SyncOption>,
}

/// An entry option: `kind` with its data (1–255 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOption {
    pub kind: u8,
    pub data: Vec<u8>,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("message of {len} bytes is shorter than its {HEADER_LEN}-byte header")]
    ShortHeader { len: usize },
    #[error("message of {len} bytes is larger than {MAX_LEN}")]
    TooLong { len: usize },
    #[error("header says {said} bytes, the datagram has {len}")]
    SizeMismatch { said: usize, len: usize },
    #[error(
        "not a version-1 message (reserved {reserved}, version {version}, spare {spare}); version 0 is not accepted"
    )]
    NotVersion1 {
        reserved: u8,
        version: u8,
        spare: u16,
    },
    #[error("entry {index}: truncated at byte {at}")]
    Truncated { index: usize, at: usize },
    #[error("entry {index}: entry version {version} (only 0 exists)")]
    EntryVersion { index: usize, version: u16 },
    #[error("entry {index}: unknown type {kind:#04x}")]
    EntryType { index: usize, kind: u8 },
    #[error("entry {index}: size {size} is below the {min}-byte fixed part")]
    EntrySize {
        index: usize,
        size: usize,
        min: usize,
    },
    #[error("entry {index}: protocol {protocol} is not TCP, UDP or SCTP")]
    Protocol { index: usize, protocol: u8 },
    #[error("entry {index}: option {kind}: {why}")]
    Option {
        index: usize,
        kind: u8,
        why: &'static str,
    },
    #[error("{extra} bytes after the last entry")]
    Trailing { extra: usize },
    #[error("entry {index}: {what} is of another address family than the client")]
    MixedFamily { index: usize, what: &'static str },
    #[error("message would be {len} bytes, above {MAX_LEN}")]
    EmitTooLong { len: usize },
    #[error("entry {index}: {len} bytes, above the 12-bit size field")]
    EmitEntryTooLong { index: usize, len: usize },
    #[error("more than 255 entries ({count})")]
    EmitTooMany { count: usize },
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(o))
}

impl SyncMessage {
    /// Parses one datagram. Refuses the whole message on the first fault: a backup kernel
    /// would drop the rest of it too.
    pub fn parse(buf: &[u8]) -> Result<SyncMessage, SyncError> {
        let len = buf.len();
        if len < HEADER_LEN {
            return Err(SyncError::ShortHeader { len });
        }
        if len > MAX_LEN {
            return Err(SyncError::TooLong { len });
        }
        let said = be16(buf, 2) as usize;
        if said != len {
            return Err(SyncError::SizeMismatch { said, len });
        }
        let (reserved, version, spare) = (buf[0], buf[5], be16(buf, 6));
        if reserved != 0 || version != VERSION || spare != 0 {
            return Err(SyncError::NotVersion1 {
                reserved,
                version,
                spare,
            });
        }
        let count = buf[4] as usize;
        let mut entries = Vec::with_capacity(count);
        let mut at = HEADER_LEN;
        let mut end = at;
        for index in 0..count {
            // ip_vs_process_message: each entry starts 32-bit aligned after the previous.
            at = end.next_multiple_of(4);
            if at + 4 > len {
                return Err(SyncError::Truncated { index, at });
            }
            let ver_size = be16(buf, at + 2);
            let version = ver_size >> 12;
            if version != 0 {
                return Err(SyncError::EntryVersion { index, version });
            }
            let size = (ver_size & 0x0fff) as usize;
            if at + size > len {
                return Err(SyncError::Truncated { index, at });
            }
            entries.push(parse_entry(&buf[at..at + size], index)?);
            end = at + size;
        }
        if end != len {
            return Err(SyncError::Trailing { extra: len - end });
        }
        Ok(SyncMessage {
            sync_id: buf[1],
            entries,
        })
    }

    /// The message as the kernel would send it.
    pub fn emit(&self) -> Result<Vec<u8>, SyncError> {
        let count = self.entries.len();
        if count > u8::MAX as usize {
            return Err(SyncError::EmitTooMany { count });
        }
        let mut out = vec![0, self.sync_id, 0, 0, count as u8, VERSION, 0, 0];
        for (index, e) in self.entries.iter().enumerate() {
            while out.len() % 4 != 0 {
                out.push(0);
            }
            emit_entry(e, index, &mut out)?;
        }
        let len = out.len();
        let size = u16::try_from(len).map_err(|_| SyncError::EmitTooLong { len })?;
        out[2..4].copy_from_slice(&size.to_be_bytes());
        Ok(out)
    }
}

fn parse_entry(e: &[u8], index: usize) -> Result<SyncEntry, SyncError> {
    // An entry's own size may say 0: its type byte is then not part of it.
    let kind = *e.first().ok_or(SyncError::EntrySize {
        index,
        size: 0,
        min: ENTRY_V4_LEN,
    })?;
    let (min, ipv6) = match kind {
        0 => (ENTRY_V4_LEN, false),
        1 => (ENTRY_V6_LEN, true),
        _ => return Err(SyncError::EntryType { index, kind }),
    };
    if e.len() < min {
        return Err(SyncError::EntrySize {
            index,
            size: e.len(),
            min,
        });
    }
    let protocol = e[1];
    let flags = be32(e, 4);
    if flags & FLAG_TEMPLATE == 0 && !matches!(protocol, PROTO_TCP | PROTO_UDP | PROTO_SCTP) {
        return Err(SyncError::Protocol { index, protocol });
    }
    let addr = |i: usize| {
        if ipv6 {
            v6(e, 24 + 16 * i)
        } else {
            v4(e, 24 + 4 * i)
        }
    };
    let mut options = Vec::new();
    let mut at = min;
    while at < e.len() {
        if at + 2 > e.len() {
            return Err(SyncError::Truncated { index, at });
        }
        let (kind, plen) = (e[at], e[at + 1] as usize);
        let bad = |why| SyncError::Option { index, kind, why };
        if plen == 0 {
            return Err(bad("empty"));
        }
        let data = e
            .get(at + 2..at + 2 + plen)
            .ok_or(bad("runs past the entry"))?;
        let base = kind & !OPT_F_PARAM;
        if matches!(base, OPT_SEQ_DATA | OPT_PE_DATA | OPT_PE_NAME)
            && options
                .iter()
                .any(|o: &SyncOption| o.kind & !OPT_F_PARAM == base)
        {
            return Err(bad("given twice"));
        }
        match base {
            OPT_SEQ_DATA if plen != SEQ_DATA_LEN => return Err(bad("sequence data of wrong size")),
            OPT_PE_DATA if plen > PE_DATA_MAX => return Err(bad("persistence data too long")),
            OPT_PE_NAME if plen > PE_NAME_MAX => return Err(bad("engine name too long")),
            OPT_SEQ_DATA | OPT_PE_DATA | OPT_PE_NAME => {}
            _ if kind & OPT_F_PARAM == 0 => return Err(bad("unknown and mandatory")),
            _ => {}
        }
        options.push(SyncOption {
            kind,
            data: data.to_vec(),
        });
        at += 2 + plen;
    }
    Ok(SyncEntry {
        protocol,
        flags,
        state: be16(e, 8),
        client_port: be16(e, 10),
        virtual_port: be16(e, 12),
        dest_port: be16(e, 14),
        fwmark: be32(e, 16),
        timeout: be32(e, 20),
        client: addr(0),
        virtual_addr: addr(1),
        dest: addr(2),
        options,
    })
}

fn emit_entry(e: &SyncEntry, index: usize, out: &mut Vec<u8>) -> Result<(), SyncError> {
    let ipv6 = e.client.is_ipv6();
    for (what, a) in [("virtual address", e.virtual_addr), ("real server", e.dest)] {
        if a.is_ipv6() != ipv6 {
            return Err(SyncError::MixedFamily { index, what });
        }
    }
    let start = out.len();
    out.extend_from_slice(&[u8::from(ipv6), e.protocol, 0, 0]);
    out.extend_from_slice(&e.flags.to_be_bytes());
    for v in [e.state, e.client_port, e.virtual_port, e.dest_port] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&e.fwmark.to_be_bytes());
    out.extend_from_slice(&e.timeout.to_be_bytes());
    for a in [e.client, e.virtual_addr, e.dest] {
        match a {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    for o in &e.options {
        let Ok(plen) = u8::try_from(o.data.len()) else {
            return Err(SyncError::Option {
                index,
                kind: o.kind,
                why: "longer than 255 bytes",
            });
        };
        out.push(o.kind);
        out.push(plen);
        out.extend_from_slice(&o.data);
    }
    let len = out.len() - start;
    if len > ENTRY_MAX_LEN {
        return Err(SyncError::EmitEntryTooLong { index, len });
    }
    out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    /// Captured in UML (Linux 6.1): d1's master daemon (sync id 7) after a client at
    /// 10.99.0.10:38008 talked to 10.99.0.100:7, balanced to 10.99.0.11:7 (DR): two entries,
    /// ESTABLISHED (state 1, timeout 900 s) and SYN_RECV-less first sight (state 1 too).
    const CAPTURED: &str = "0007005002010000\
        0006002400000083000194780007000700000000000003840a63000a0a6300640a63000b\
        0006002400000083000194780007000700000000000003840a63000a0a6300640a63000b";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn kernel_capture_parses_and_re_emits_identically() {
        let bytes = hex(CAPTURED);
        let m = SyncMessage::parse(&bytes).unwrap();
        assert_eq!(m.sync_id, 7);
        assert_eq!(m.entries.len(), 2);
        let e = &m.entries[0];
        assert_eq!(e.protocol, 6);
        assert_eq!(e.flags, 0x83);
        assert_eq!(e.state, 1);
        assert_eq!(e.client, "10.99.0.10".parse::<IpAddr>().unwrap());
        assert_eq!(e.client_port, 38008);
        assert_eq!(e.virtual_addr, "10.99.0.100".parse::<IpAddr>().unwrap());
        assert_eq!(e.virtual_port, 7);
        assert_eq!(e.dest, "10.99.0.11".parse::<IpAddr>().unwrap());
        assert_eq!(e.timeout, 900);
        assert_eq!(m.emit().unwrap(), bytes);
    }

    #[test]
    fn faults_are_named() {
        let good = hex(CAPTURED);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            SyncMessage::parse(&b).unwrap_err()
        };
        assert_eq!(
            SyncMessage::parse(&good[..5]).unwrap_err(),
            SyncError::ShortHeader { len: 5 }
        );
        assert!(matches!(
            with(&|b| b.truncate(60)),
            SyncError::SizeMismatch { said: 80, len: 60 }
        ));
        assert!(matches!(
            with(&|b| b[5] = 0),
            SyncError::NotVersion1 { version: 0, .. }
        ));
        assert!(matches!(
            with(&|b| b[8 + 2] = 0x10),
            SyncError::EntryVersion { index: 0, .. }
        ));
        assert!(matches!(
            with(&|b| b[8] = 4),
            SyncError::EntryType { index: 0, kind: 4 }
        ));
        assert!(matches!(
            with(&|b| b[8 + 1] = 1),
            SyncError::Protocol {
                index: 0,
                protocol: 1
            }
        ));
        // A template may carry any protocol (fwmark persistence uses IPPROTO_IP).
        let mut t = good.clone();
        t[8 + 1] = 0;
        t[8 + 4..8 + 8].copy_from_slice(&(0x83 | FLAG_TEMPLATE).to_be_bytes());
        assert!(SyncMessage::parse(&t).is_ok());
        assert!(matches!(
            with(&|b| b[4] = 3),
            SyncError::Truncated { index: 2, .. }
        ));
        assert!(matches!(
            with(&|b| b[4] = 1),
            SyncError::Trailing { extra: 36 }
        ));
        // The first entry's size grown to swallow 8 bytes of the second: an option of kind
        // 0 with length 6, unknown and mandatory.
        assert!(matches!(
            with(&|b| b[8 + 3] = 44),
            SyncError::Option {
                index: 0,
                kind: 0,
                ..
            }
        ));
    }

    fn entry_with(options: Vec<SyncOption>) -> SyncMessage {
        let mut m = SyncMessage::parse(&hex(CAPTURED)).unwrap();
        m.entries.truncate(1);
        m.entries[0].options = options;
        m
    }

    #[test]
    fn options_are_checked() {
        let seq = SyncOption {
            kind: OPT_SEQ_DATA,
            data: vec![0; 24],
        };
        let ok = entry_with(vec![
            seq.clone(),
            SyncOption {
                kind: OPT_F_PARAM | 9,
                data: vec![1],
            },
        ]);
        assert_eq!(SyncMessage::parse(&ok.emit().unwrap()).unwrap(), ok);
        for (opts, why) in [
            (vec![seq.clone(), seq.clone()], "given twice"),
            (
                vec![SyncOption {
                    kind: OPT_SEQ_DATA,
                    data: vec![0; 12],
                }],
                "sequence data of wrong size",
            ),
            (
                vec![SyncOption {
                    kind: OPT_PE_NAME,
                    data: vec![b'x'; 17],
                }],
                "engine name too long",
            ),
            (
                vec![SyncOption {
                    kind: 9,
                    data: vec![1],
                }],
                "unknown and mandatory",
            ),
        ] {
            let bytes = entry_with(opts).emit().unwrap();
            match SyncMessage::parse(&bytes) {
                Err(SyncError::Option { why: w, .. }) => assert_eq!(w, why),
                other => panic!("{why}: {other:?}"),
            }
        }
        let mut empty = entry_with(vec![]).emit().unwrap();
        empty.extend_from_slice(&[OPT_PE_DATA, 0]);
        let n = empty.len() as u16;
        empty[2..4].copy_from_slice(&n.to_be_bytes());
        empty[8 + 2..8 + 4].copy_from_slice(&(n - 8).to_be_bytes());
        assert!(matches!(
            SyncMessage::parse(&empty),
            Err(SyncError::Option { why: "empty", .. })
        ));
    }

    #[test]
    fn emit_refuses_what_the_format_cannot_say() {
        let mut m = entry_with(vec![]);
        m.entries[0].dest = "::1".parse().unwrap();
        assert!(matches!(
            m.emit(),
            Err(SyncError::MixedFamily {
                what: "real server",
                ..
            })
        ));
        let m = entry_with(vec![SyncOption {
            kind: OPT_PE_DATA,
            data: vec![0; 256],
        }]);
        assert!(matches!(m.emit(), Err(SyncError::Option { .. })));
    }

    fn ip(v6: bool) -> impl Strategy<Value = IpAddr> {
        if v6 {
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into())).boxed()
        } else {
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())).boxed()
        }
    }

    fn entry() -> impl Strategy<Value = SyncEntry> {
        any::<bool>().prop_flat_map(|v6| {
            (
                prop_oneof![Just(6u8), Just(17), Just(132)],
                any::<u32>(),
                any::<[u16; 4]>(),
                (ip(v6), ip(v6), ip(v6)),
                any::<(u32, u32)>(),
                proptest::option::of(any::<[u8; 24]>()),
                proptest::collection::vec(any::<u8>(), 1..40),
            )
                .prop_map(
                    |(protocol, flags, p, (c, v, d), (fwmark, timeout), seq, pe)| {
                        let mut options = Vec::new();
                        if let Some(s) = seq {
                            options.push(SyncOption {
                                kind: OPT_SEQ_DATA,
                                data: s.to_vec(),
                            });
                        }
                        options.push(SyncOption {
                            kind: OPT_PE_DATA,
                            data: pe,
                        });
                        SyncEntry {
                            protocol,
                            flags,
                            state: p[0],
                            client: c,
                            client_port: p[1],
                            virtual_addr: v,
                            virtual_port: p[2],
                            dest: d,
                            dest_port: p[3],
                            fwmark,
                            timeout,
                            options,
                        }
                    },
                )
        })
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(sync_id: u8, entries in proptest::collection::vec(entry(), 0..12)) {
            let m = SyncMessage { sync_id, entries };
            let bytes = m.emit().unwrap();
            prop_assert_eq!(SyncMessage::parse(&bytes).unwrap(), m);
        }

        #[test]
        fn parse_never_panics_and_what_parses_re_emits_the_same(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(m) = SyncMessage::parse(&bytes) {
                let again = m.emit().unwrap();
                prop_assert_eq!(SyncMessage::parse(&again).unwrap(), m);
            }
        }

        #[test]
        fn mutated_captures_never_panic(at in 0usize..80, value: u8) {
            let mut b = hex(CAPTURED);
            b[at] = value;
            let _ = SyncMessage::parse(&b);
        }
    }

    /// Found by the `ipvs_sync` fuzz target: an entry whose size field says 0 (the second
    /// entry's, after the first grew by 8 bytes) made the parser read its type byte past the
    /// end of an empty slice.
    #[test]
    fn an_entry_of_size_zero_is_refused() {
        let crash = "00070050020100000006002400000083000194780007000700000000000003840a63000a\
                     83000194780007000700000000000003840a63000a0a6300640a63000b000600240000\
                     00830001940a63000b";
        let err = SyncMessage::parse(&hex(crash)).unwrap_err();
        assert!(matches!(err, SyncError::EntrySize { size: 0, .. }), "{err}");
    }

    /// Every byte of the capture set to each boundary value, one at a time.
    #[test]
    fn boundary_mutations_never_panic() {
        let good = hex(CAPTURED);
        for at in 0..good.len() {
            for value in [0u8, 1, 2, 3, 4, 0x0f, 0x10, 0x24, 0x40, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] = value;
                let _ = SyncMessage::parse(&b);
            }
        }
    }
}
