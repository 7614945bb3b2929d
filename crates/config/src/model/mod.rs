//! The typed, validated configuration: what a keepalived.conf (plus flotilla's `cluster`
//! block) means, with keepalived's defaults filled in. Serialisable and versioned, because it
//! is replicated by Raft between directors.

pub mod cluster;
pub mod common;
pub mod global;
pub mod lvs;
pub mod vrrp;

use serde::{Deserialize, Serialize};

pub use cluster::Cluster;
pub use common::{Micros, Origin, Script};
pub use global::GlobalDefs;
pub use lvs::LvsSection;
pub use vrrp::VrrpSection;

/// Version of the serialised model. Bump it when a field changes meaning or is removed;
/// adding a defaulted field does not need a bump.
pub const MODEL_VERSION: u32 = 1;

/// One resolved configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    /// `global_defs`.
    pub global: GlobalDefs,
    /// The VRRP half: instances, sync groups, trackers, static addresses.
    pub vrrp: VrrpSection,
    /// The LVS half: virtual servers, their groups, real servers and checkers.
    pub lvs: LvsSection,
    /// flotilla's fleet extension; `None` for a plain keepalived configuration (standalone
    /// mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
}

impl Config {
    /// Gives back the room its vectors grew into while it was built or decoded (see
    /// [`LvsSection::shrink_to_fit`]); done once for a configuration that is kept.
    pub fn shrink_to_fit(&mut self) {
        self.lvs.shrink_to_fit();
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: MODEL_VERSION,
            global: GlobalDefs::default(),
            vrrp: VrrpSection::default(),
            lvs: LvsSection::default(),
            cluster: None,
        }
    }
}
