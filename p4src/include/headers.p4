/* Packet headers and the controller-facing structs (digests, controller
 * headers) shared by the v1model and TNA programs. */
#ifndef FLOWCACHE_HEADERS_P4
#define FLOWCACHE_HEADERS_P4

typedef bit<48> mac_addr_t;
/* IPv4 now; IPv6 keys are a later step. The key fields use these typedefs so
 * widening them is one change, and nothing in the controller assumes 104 bits. */
typedef bit<32> ipv4_addr_t;
typedef bit<9> port_t;

/* Packet-out from the controller: either straight to a port, or through the
 * flow table as if received on ingress_port (so it follows the flow's action
 * once installed). Byte aligned: 9 + 9 + 8 + 6 = 32 bits. */
@controller_header("packet_out")
@id(1)
header packet_out_t {
    port_t egress_port;
    port_t ingress_port;
    bit<8> mode;
    bit<6> _pad;
}

/* Packet-in to the controller (hold mode): the original ingress port and why.
 * 9 + 8 + 7 = 24 bits. */
@controller_header("packet_in")
@id(2)
header packet_in_t {
    port_t ingress_port;
    bit<8> reason;
    bit<7> _pad;
}

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4> version;
    bit<4> ihl;
    bit<8> diffserv;
    bit<16> total_len;
    bit<16> identification;
    bit<3> flags;
    bit<13> frag_offset;
    bit<8> ttl;
    bit<8> protocol;
    bit<16> hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

header tcp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4> data_offset;
    bit<4> res;
    bit<8> flags;   /* CWR ECE URG ACK PSH RST SYN FIN */
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

const bit<8> TCP_FIN = 0x01;
const bit<8> TCP_SYN = 0x02;
const bit<8> TCP_RST = 0x04;
const bit<8> TCP_ACK = 0x10;

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

/* ICMP with the echo identifier: it stands in for both ports of the key. */
header icmp_t {
    bit<8> type;
    bit<8> code;
    bit<16> checksum;
    bit<16> identifier;
    bit<16> sequence;
}

struct headers_t {
    packet_out_t packet_out;
    packet_in_t packet_in;
    ethernet_t ethernet;
    ipv4_t ipv4;
    tcp_t tcp;
    udp_t udp;
    icmp_t icmp;
}

/* The flow key: VRF + IP 5-tuple. Its fields, in this order, are also the
 * bucket hash input (crc32 over the fields packed MSB first). */
struct flow_key_t {
    bit<16> vrf;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
    bit<8> proto;
    bit<16> src_port;
    bit<16> dst_port;
}

/* New-flow digest: a packet missed the main table and the overflow area. The
 * controller computes the same bucket hash; carrying the switch's value lets
 * tests compare the two. No per-packet field, so PI's de-duplication works.
 * v1model takes no @id for digests: p4c derives the P4Info id from the
 * struct's name, so the id is stable as long as the name is. */
struct new_flow_digest_t {
    bit<16> vrf;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
    bit<8> proto;
    bit<16> src_port;
    bit<16> dst_port;
    port_t ingress_port;
    bit<32> bucket_hash;
}

/* Flow event: a TCP FIN or RST was seen for the first time on an installed
 * entry (once per transition, never per packet). tcp_flags is the entry's
 * FLOW_TCP_* state after the packet. */
struct flow_event_digest_t {
    bit<32> flow_id;
    bit<8> tcp_flags;
}

struct local_metadata_t {
    flow_key_t key;
    port_t in_port;          /* the ingress port the flow is keyed on */
    bit<32> bucket_hash;     /* crc32 of the key */
    bit<32> ovf_bucket;      /* bucket_hash % OVERFLOW_BUCKETS */
    bit<32> ovf_slot;        /* overflow slot that matched */
    bit<32> flow_id;         /* slot index of the entry that matched */
    bit<1> matched;          /* main table or overflow hit */
    bit<1> rewrite;          /* NAT changed the packet: fix checksums */
    bit<8> tcp_state;        /* FLOW_TCP_* of the entry after this packet */
}

#endif
