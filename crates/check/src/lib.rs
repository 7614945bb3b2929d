//! Health checkers for real servers with keepalived's semantics and defaults: TCP_CHECK,
//! HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK and FILE_CHECK. A checker
//! reports transitions (up or down, with the reason), never every probe, and never changes
//! IPVS itself.
