//! Tests of the VRRP lowering.
