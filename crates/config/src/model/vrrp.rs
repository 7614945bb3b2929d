//! PROVISIONAL stub, being filled in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpSection {}
