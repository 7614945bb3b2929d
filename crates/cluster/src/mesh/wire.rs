//! What directors say to each other: a versioned [`Envelope`] around a [`Message`], encoded
//! with postcard and framed on QUIC streams by a 4-byte big-endian length.
//!
//! Rolling upgrades mix adjacent versions in one fleet, so a director decodes frames of
//! [`PROTOCOL_VERSION`] and of the version before it ([`v0`] is that frozen layout), and
//! answers a peer in the newest version that peer has spoken. Anything else is refused with
//! [`WireError`]; a refused frame is dropped, never the stream it came on (the length prefix
//! keeps the stream in step).

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// The oldest version this build still understands (N − 1).
pub const OLDEST_SUPPORTED_VERSION: u16 = PROTOCOL_VERSION - 1;
/// Largest frame accepted on a request stream.
pub const MAX_FRAME: usize = 16 << 20;
/// Largest frame accepted on a connection-sync stream: one kernel sync message (at most
/// 64 KiB) and its envelope.
pub const MAX_CONN_SYNC_FRAME: usize = 80 << 10;
/// Largest frame accepted on the heartbeat stream: a heartbeat is small, a peer sending
/// megabytes at 50 Hz is broken.
pub const MAX_HEARTBEAT_FRAME: usize = 64 << 10;

/// A decoded frame: the version it was written in and its message, already converted to this
/// version's [`Message`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u16,
    pub body: Message,
}

/// What a director reports about itself in every heartbeat. The agent fills it; the mesh only
/// carries it (`detail` is the agent's own encoding, e.g. per-unit verdicts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The sender's software version.
    pub version: String,
    /// The sender's load, in the agent's unit (e.g. VIPs held).
    pub load: u32,
    pub detail: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Increases by one per heartbeat on a connection.
    pub seq: u64,
    pub health: Health,
    /// The directors the sender currently suspects or holds dead: the gossip that confirms
    /// a failure (a second opinion).
    pub suspects: Vec<String>,
}

/// Messages of [`PROTOCOL_VERSION`]. New variants go at the end: postcard numbers variants by
/// position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// On the one heartbeat stream of a connection, both ways.
    Heartbeat(Heartbeat),
    /// The first frame of a request stream.
    Request(Vec<u8>),
    /// The answer on that stream: the handler's bytes or its error.
    Response(Result<Vec<u8>, String>),
    /// One IPVS connection-sync message as a director's kernel master daemon sent it (the
    /// agent parses it before sending and again on receipt), on a connection-sync stream.
    /// Added within version 1: a peer built before it counts the frame malformed and drops
    /// it, and the stream goes on; a version-0 peer is never sent one.
    ConnSync(Vec<u8>),
}

/// Version 0, frozen: heartbeats carried no suspicions (gossip came with version 1).
pub mod v0 {
    use serde::{Deserialize, Serialize};

    use super::Health;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Heartbeat {
        pub seq: u64,
        pub health: Health,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Message {
        Heartbeat(Heartbeat),
        Request(Vec<u8>),
        Response(Result<Vec<u8>, String>),
    }
}

impl From<v0::Message> for Message {
    fn from(old: v0::Message) -> Self {
        match old {
            v0::Message::Heartbeat(v0::Heartbeat { seq, health }) => {
                Message::Heartbeat(Heartbeat {
                    seq,
                    health,
                    suspects: Vec::new(),
                })
            }
            v0::Message::Request(body) => Message::Request(body),
            v0::Message::Response(result) => Message::Response(result),
        }
    }
}

impl TryFrom<&Message> for v0::Message {
    type Error = WireError;

    fn try_from(new: &Message) -> Result<Self, WireError> {
        Ok(match new {
            Message::Heartbeat(hb) => v0::Message::Heartbeat(v0::Heartbeat {
                seq: hb.seq,
                health: hb.health.clone(),
            }),
            Message::Request(body) => v0::Message::Request(body.clone()),
            Message::Response(result) => v0::Message::Response(result.clone()),
            Message::ConnSync(_) => {
                return Err(WireError::NotInVersion {
                    what: "connection sync",
                    version: 0,
                });
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(
        "protocol version {got} is not supported (this director speaks {OLDEST_SUPPORTED_VERSION} to {PROTOCOL_VERSION})"
    )]
    UnsupportedVersion { got: u16 },
    #[error("malformed version {version} message: {source}")]
    Malformed {
        version: u16,
        #[source]
        source: postcard::Error,
    },
    #[error("malformed envelope: {0}")]
    Envelope(#[source] postcard::Error),
    #[error("cannot encode: {0}")]
    Encode(#[source] postcard::Error),
    #[error("version {version} has no {what} message")]
    NotInVersion { what: &'static str, version: u16 },
}

/// Encodes `message` as version `version` (this one or the one before).
pub fn encode(message: &Message, version: u16) -> Result<Vec<u8>, WireError> {
    match version {
        PROTOCOL_VERSION => postcard::to_allocvec(&(version, message)),
        OLDEST_SUPPORTED_VERSION => {
            postcard::to_allocvec(&(version, v0::Message::try_from(message)?))
        }
        got => return Err(WireError::UnsupportedVersion { got }),
    }
    .map_err(WireError::Encode)
}

/// Decodes a frame of this version or the one before.
pub fn decode(frame: &[u8]) -> Result<Envelope, WireError> {
    let (version, rest) = postcard::take_from_bytes::<u16>(frame).map_err(WireError::Envelope)?;
    let body = match version {
        PROTOCOL_VERSION => postcard::from_bytes::<Message>(rest),
        OLDEST_SUPPORTED_VERSION => postcard::from_bytes::<v0::Message>(rest).map(Message::from),
        got => return Err(WireError::UnsupportedVersion { got }),
    }
    .map_err(|source| WireError::Malformed { version, source })?;
    Ok(Envelope { version, body })
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one length-prefixed frame; `None` when the stream ends cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    recv: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let n = recv.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut frame = vec![0u8; len];
    recv.read_exact(&mut frame).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(Some(frame))
}

/// Writes one length-prefixed frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    send: &mut W,
    frame: &[u8],
) -> Result<(), FrameError> {
    let len = u32::try_from(frame.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or(FrameError::TooLarge {
            len: frame.len(),
            max: MAX_FRAME,
        })?;
    let mut buf = Vec::with_capacity(4 + frame.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(frame);
    send.write_all(&buf).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    fn heartbeat() -> Message {
        Message::Heartbeat(Heartbeat {
            seq: 7,
            health: Health {
                version: "0.1.0".into(),
                load: 3,
                detail: vec![1, 2],
            },
            suspects: vec!["lb-3".into()],
        })
    }

    #[test]
    fn current_version_round_trips() {
        let frame = encode(&heartbeat(), PROTOCOL_VERSION).unwrap();
        assert_eq!(
            decode(&frame).unwrap(),
            Envelope {
                version: PROTOCOL_VERSION,
                body: heartbeat()
            }
        );
    }

    /// A frame built by a version-0 director, with the old layout serialised directly (not
    /// through `encode`), is understood.
    #[test]
    fn previous_version_is_understood() {
        let old = v0::Message::Heartbeat(v0::Heartbeat {
            seq: 9,
            health: Health {
                version: "0.0.9".into(),
                load: 1,
                detail: vec![],
            },
        });
        let frame = postcard::to_allocvec(&(0u16, &old)).unwrap();
        let env = decode(&frame).unwrap();
        assert_eq!(env.version, 0);
        match env.body {
            Message::Heartbeat(hb) => {
                assert_eq!(hb.seq, 9);
                assert_eq!(hb.health.version, "0.0.9");
                assert!(hb.suspects.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // And this build can answer in it.
        let answer = encode(&heartbeat(), 0).unwrap();
        assert!(matches!(
            postcard::take_from_bytes::<u16>(&answer)
                .and_then(|(_, rest)| postcard::from_bytes::<v0::Message>(rest)),
            Ok(v0::Message::Heartbeat(v0::Heartbeat { seq: 7, .. }))
        ));
    }

    #[test]
    fn next_version_and_garbage_are_refused() {
        let frame = postcard::to_allocvec(&(PROTOCOL_VERSION + 1, heartbeat())).unwrap();
        let err = decode(&frame).unwrap_err();
        assert!(
            matches!(err, WireError::UnsupportedVersion { got: 2 }),
            "{err}"
        );
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
        assert!(matches!(
            encode(&heartbeat(), PROTOCOL_VERSION + 1),
            Err(WireError::UnsupportedVersion { .. })
        ));
        assert!(matches!(decode(&[]), Err(WireError::Envelope(_))));
        // A variant this build does not know (index 9).
        let unknown = [PROTOCOL_VERSION as u8, 9, 0, 0];
        assert!(matches!(
            decode(&unknown),
            Err(WireError::Malformed { version: 1, .. })
        ));
    }

    /// The variant added within version 1: round-trips at version 1; a build from before it
    /// (the same enum without the last variant) refuses the frame as malformed, not the
    /// stream; version 0 cannot carry it.
    #[test]
    fn conn_sync_is_additive() {
        let msg = Message::ConnSync(vec![0, 7, 0, 8, 0, 1, 0, 0]);
        let frame = encode(&msg, PROTOCOL_VERSION).unwrap();
        assert_eq!(decode(&frame).unwrap().body, msg);
        let before = postcard::take_from_bytes::<u16>(&frame)
            .and_then(|(_, rest)| postcard::from_bytes::<v0::Message>(rest));
        assert!(before.is_err(), "{before:?}");
        assert!(matches!(
            encode(&msg, OLDEST_SUPPORTED_VERSION),
            Err(WireError::NotInVersion { version: 0, .. })
        ));
        // Messages built by that older version-1 build still decode unchanged.
        let old = postcard::to_allocvec(&(1u16, v0::Message::Request(vec![1, 2]))).unwrap();
        assert_eq!(decode(&old).unwrap().body, Message::Request(vec![1, 2]));
    }

    #[tokio::test]
    async fn frames_stream_and_end_cleanly() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, b"one").await.unwrap();
        write_frame(&mut a, b"").await.unwrap();
        drop(a);
        assert_eq!(read_frame(&mut b, 16).await.unwrap().unwrap(), b"one");
        assert_eq!(read_frame(&mut b, 16).await.unwrap().unwrap(), b"");
        assert!(read_frame(&mut b, 16).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, &[0; 32]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, 16).await,
            Err(FrameError::TooLarge { len: 32, max: 16 })
        ));
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&[0, 0, 0, 5, 1]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 16).await,
            Err(FrameError::Truncated)
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn both_versions_round_trip(seq: u64, load: u32, version in "[0-9.]{0,8}",
                                    suspects in proptest::collection::vec("[a-z]{1,6}", 0..4)) {
            let msg = Message::Heartbeat(Heartbeat {
                seq, health: Health { version, load, detail: vec![] }, suspects,
            });
            let now = decode(&encode(&msg, PROTOCOL_VERSION).unwrap()).unwrap();
            prop_assert_eq!(&now.body, &msg);
            let old = decode(&encode(&msg, OLDEST_SUPPORTED_VERSION).unwrap()).unwrap();
            prop_assert_eq!(old.version, OLDEST_SUPPORTED_VERSION);
            let mut expected = msg.clone();
            if let Message::Heartbeat(hb) = &mut expected { hb.suspects.clear(); }
            prop_assert_eq!(old.body, expected);
        }
    }
}
