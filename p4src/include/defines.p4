/*
 * Sizes and constants of the flow-cache program, shared by the v1model and
 * TNA programs. Every size is a preprocessor define with the vRouter default,
 * so a test build can shrink it with -DFLOW_ENTRIES=... on the p4c command
 * line. The controller reads the values the committed artifacts were built
 * with from pipelines/flowcache/pipeline.yaml.
 */
#ifndef FLOWCACHE_DEFINES_P4
#define FLOWCACHE_DEFINES_P4

/* Main (exact-match) flow table entries: vRouter's default flow table size. */
#ifndef FLOW_ENTRIES
#define FLOW_ENTRIES 512000
#endif

/* Overflow entries, searched in the data plane when the main table misses. */
#ifndef OVERFLOW_ENTRIES
#define OVERFLOW_ENTRIES 8000
#endif

/* Entries per hash bucket (vRouter: 4), for the main and the overflow area. */
#ifndef BUCKET_WAYS
#define BUCKET_WAYS 4
#endif

/* The overflow area is OVERFLOW_BUCKETS lists of BUCKET_WAYS entries each. */
#define OVERFLOW_BUCKETS (OVERFLOW_ENTRIES / BUCKET_WAYS)

/* Flow ids: main slots are [0, FLOW_ENTRIES), overflow slots follow. */
#define FLOW_SLOTS (FLOW_ENTRIES + OVERFLOW_ENTRIES)

/* Ingress port -> VRF entries. */
#ifndef PORT_VRF_ENTRIES
#define PORT_VRF_ENTRIES 512
#endif

/* The CPU port, as given to simple_switch_grpc with --cpu-port. */
#ifndef CPU_PORT
#define CPU_PORT 255
#endif

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_IPV6 = 0x86dd;

const bit<8> IP_PROTO_ICMP = 1;
const bit<8> IP_PROTO_TCP = 6;
const bit<8> IP_PROTO_UDP = 17;

const bit<8> ICMP_ECHO_REPLY = 0;
const bit<8> ICMP_ECHO_REQUEST = 8;

/* TCP flag bits in the per-flow state register (one register per entry,
 * that is, per direction of a session). */
const bit<8> FLOW_TCP_SYN = 0x01;          /* SYN without ACK seen */
const bit<8> FLOW_TCP_SYNACK = 0x02;       /* SYN with ACK seen */
const bit<8> FLOW_TCP_ESTABLISHED = 0x04;  /* ACK without SYN after a SYN/SYN-ACK */
const bit<8> FLOW_TCP_FIN = 0x08;          /* FIN seen */
const bit<8> FLOW_TCP_RST = 0x10;          /* RST seen */
const bit<8> FLOW_TCP_CLOSING = 0x18;      /* FIN | RST: raise a flow event */

/* Overflow slot action kinds (register ovf_action). 0 is never written by a
 * valid slot; the valid bit, not the kind, says whether a slot is in use. */
const bit<8> OVF_ACTION_FORWARD = 1;
const bit<8> OVF_ACTION_DROP = 2;
const bit<8> OVF_ACTION_NAT = 3;

/* packet_out.mode */
const bit<8> PACKET_OUT_FLOW_TABLE = 0;  /* process as if received on packet_out.ingress_port */
const bit<8> PACKET_OUT_DIRECT = 1;      /* send to packet_out.egress_port as is */

/* packet_in.reason */
const bit<8> PACKET_IN_NEW_FLOW = 1;     /* held while the controller installs the flow */

#endif
