/* Parser constructs as p4c-bm2-ss compiles them: stacks, varbit, lookahead, verify,
 * header unions, parser errors. The results go out in a digest. */
#include <core.p4>
#include <v1model.p4>

error { BadVersion }

header ethernet_t { bit<48> dst; bit<48> src; bit<16> type; }
header mpls_t { bit<20> label; bit<3> tc; bit<1> bos; bit<8> ttl; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
    bit<16> identification; bit<3> flags; bit<13> frag_offset;
    bit<8> ttl; bit<8> protocol; bit<16> hdr_checksum;
    bit<32> src_addr; bit<32> dst_addr;
}
header ipv4_options_t { varbit<320> options; }
header tcp_t { bit<16> sport; bit<16> dport; bit<32> seq; bit<32> ack; bit<16> rest; bit<16> window; bit<16> cksum; bit<16> urg; }
header udp_t { bit<16> sport; bit<16> dport; bit<16> len; bit<16> cksum; }
header_union l4_t { tcp_t tcp; udp_t udp; }

struct headers_t {
    ethernet_t ethernet;
    mpls_t[3] mpls;
    ipv4_t ipv4;
    ipv4_options_t opts;
    l4_t l4;
}

struct result_t {
    bit<32> parser_error;
    bit<8> labels;
    bit<20> last_label;
    bit<8> peeked;
    bit<1> ipv4;
    bit<1> tcp;
    bit<1> udp;
    bit<16> dport;
}

struct meta_t { result_t r; bit<8> peek; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta,
         inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.type) {
            0x8847: parse_mpls;
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_mpls {
        pkt.extract(hdr.mpls.next);
        transition select(hdr.mpls.last.bos) {
            0: parse_mpls;
            1: after_mpls;
        }
    }
    state after_mpls {
        meta.r.last_label = hdr.mpls.last.label;
        meta.peek = pkt.lookahead<bit<8>>();
        transition select(pkt.lookahead<bit<4>>()) {
            4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        verify(hdr.ipv4.version == 4, error.BadVersion);
        pkt.extract(hdr.opts, (bit<32>) (((bit<16>) hdr.ipv4.ihl - 5) * 32));
        transition select(hdr.ipv4.protocol) {
            6: parse_tcp;
            17: parse_udp;
            default: accept;
        }
    }
    state parse_tcp { pkt.extract(hdr.l4.tcp); transition accept; }
    state parse_udp { pkt.extract(hdr.l4.udp); transition accept; }
}

control VC(inout headers_t hdr, inout meta_t meta) { apply { } }

control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        if (sm.parser_error == error.NoError) { meta.r.parser_error = 0; }
        else if (sm.parser_error == error.PacketTooShort) { meta.r.parser_error = 1; }
        else if (sm.parser_error == error.StackOutOfBounds) { meta.r.parser_error = 2; }
        else if (sm.parser_error == error.BadVersion) { meta.r.parser_error = 3; }
        else { meta.r.parser_error = 9; }
        if (hdr.mpls[0].isValid()) { meta.r.labels = 1; }
        if (hdr.mpls[1].isValid()) { meta.r.labels = 2; }
        if (hdr.mpls[2].isValid()) { meta.r.labels = 3; }
        meta.r.peeked = meta.peek;
        meta.r.ipv4 = hdr.ipv4.isValid() ? 1w1 : 1w0;
        meta.r.tcp = hdr.l4.tcp.isValid() ? 1w1 : 1w0;
        meta.r.udp = hdr.l4.udp.isValid() ? 1w1 : 1w0;
        if (hdr.l4.tcp.isValid()) { meta.r.dport = hdr.l4.tcp.dport; }
        else if (hdr.l4.udp.isValid()) { meta.r.dport = hdr.l4.udp.dport; }
        digest<result_t>(1, meta.r);
        sm.egress_spec = 1;
    }
}

control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.mpls);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.opts);
        pkt.emit(hdr.l4);
    }
}

V1Switch(P(), VC(), I(), E(), CC(), D()) main;
