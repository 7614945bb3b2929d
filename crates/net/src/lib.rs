//! The host, kept thin: virtual addresses through rtnetlink, link up/down watch, the raw
//! VRRP socket (IP protocol 112, multicast join, TTL 255) and gratuitous ARP / unsolicited
//! neighbour advertisements over AF_PACKET. It carries out what the VRRP state machine
//! decided and never decides anything itself.
