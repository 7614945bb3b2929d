//! The director process: the ractor actor tree that wires the configuration, the VRRP state
//! machines, the host, IPVS, the checkers and the cluster together. Actors are thin shells
//! around the pure crates; a crashed actor is restarted alone, never the director.
