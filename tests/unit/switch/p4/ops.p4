/* Expression corner cases as p4c-bm2-ss compiles them; results go out in a digest. */
#include <core.p4>
#include <v1model.p4>

header data_t {
    bit<8> a;
    bit<8> b;
    int<8> s;
    bit<16> w;
}

struct headers_t { data_t data; }

struct result_t {
    bit<8> sum;        /* a + b, wraps */
    bit<8> sat;        /* a |+| b */
    bit<8> diff;       /* a - b, wraps */
    int<8> ssat;       /* s |-| 100 */
    bit<16> concat;    /* a ++ b */
    bit<4> slice;      /* w[11:8] */
    bit<8> shifted;    /* a << b[2:0] */
    int<16> widened;   /* (int<16>) s */
    bit<8> notted;     /* ~a */
    bit<1> cmp;        /* s < 0 */
    bit<8> cond;       /* set by an if inside an action */
    bit<32> hashed;    /* crc16 of (a, b) */
}

struct meta_t { result_t r; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta,
         inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.data);
        transition accept;
    }
}

control VC(inout headers_t hdr, inout meta_t meta) { apply { } }

control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action pick(bit<8> x) {
        if (hdr.data.a > x) {
            meta.r.cond = 1;
        } else {
            meta.r.cond = 2;
        }
    }
    table t {
        key = { hdr.data.b: exact; }
        actions = { pick; }
        default_action = pick(100);
    }
    apply {
        meta.r.sum = hdr.data.a + hdr.data.b;
        meta.r.sat = hdr.data.a |+| hdr.data.b;
        meta.r.diff = hdr.data.a - hdr.data.b;
        meta.r.ssat = hdr.data.s |-| 100;
        meta.r.concat = hdr.data.a ++ hdr.data.b;
        meta.r.slice = hdr.data.w[11:8];
        meta.r.shifted = hdr.data.a << hdr.data.b[2:0];
        meta.r.widened = (int<16>) hdr.data.s;
        meta.r.notted = ~hdr.data.a;
        meta.r.cmp = hdr.data.s < 0 ? 1w1 : 1w0;
        t.apply();
        hash(meta.r.hashed, HashAlgorithm.crc16, 32w0, { hdr.data.a, hdr.data.b }, 32w65536);
        digest<result_t>(1, meta.r);
        sm.egress_spec = 2;
    }
}

control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.data); } }

V1Switch(P(), VC(), I(), E(), CC(), D()) main;
