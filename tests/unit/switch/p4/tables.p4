/* Tables, externs and simple_switch's packet flow as p4c-bm2-ss compiles them. */
#include <core.p4>
#include <v1model.p4>

header ethernet_t { bit<48> dst; bit<48> src; bit<16> type; }
header data_t { bit<32> addr; bit<16> port; bit<8> kind; bit<8> tag; }

struct headers_t { ethernet_t ethernet; data_t data; }

struct meta_t {
    @field_list(1) bit<8> passes;
    bit<8> lpm_hit;
    bit<8> tern_hit;
    bit<8> path;
    bit<32> reg_value;
}

struct result_t {
    bit<8> lpm_hit;
    bit<8> tern_hit;
    bit<8> path;
    bit<32> reg_value;
    bit<8> passes;
    bit<32> instance;
}

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta,
         inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.ethernet);
        pkt.extract(hdr.data);
        transition accept;
    }
}

control VC(inout headers_t hdr, inout meta_t meta) { apply { } }

control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    register<bit<32>>(16) regs;
    counter(16, CounterType.packets_and_bytes) ctr;
    direct_counter(CounterType.packets_and_bytes) lpm_ctr;

    action set_lpm(bit<8> v) { meta.lpm_hit = v; lpm_ctr.count(); }
    action lpm_miss() { meta.lpm_hit = 0xff; lpm_ctr.count(); }
    table lpm_t {
        key = { hdr.data.addr: lpm; }
        actions = { set_lpm; lpm_miss; }
        default_action = lpm_miss();
        counters = lpm_ctr;
        size = 64;
    }

    action set_tern(bit<8> v) { meta.tern_hit = v; }
    action path_a() { meta.path = 1; }
    action path_b() { meta.path = 2; }
    table tern_t {
        key = {
            hdr.data.addr: ternary;
            hdr.data.port: range;
            hdr.data.kind: optional;
        }
        actions = { set_tern; path_a; path_b; NoAction; }
        const entries = {
            (32w0x0a000000 &&& 32w0xff000000, 1000 .. 2000, 7) : set_tern(1);
            (_, 0 .. 100, _) : path_a();
            (_, _, 9) : path_b();
        }
        default_action = NoAction();
    }

    action drop() { mark_to_drop(sm); }
    action again() { meta.passes = meta.passes + 1; resubmit_preserving_field_list(1); }

    apply {
        if (lpm_t.apply().hit) {
            regs.read(meta.reg_value, (bit<32>) meta.lpm_hit & 15);
            regs.write((bit<32>) meta.lpm_hit & 15, meta.reg_value + 1);
        }
        switch (tern_t.apply().action_run) {
            path_a: { meta.path = meta.path + 10; }
            path_b: { exit; }
        }
        ctr.count((bit<32>) hdr.data.tag & 15);
        if (hdr.data.kind == 3 && meta.passes < 2) {
            again();
        } else {
            digest<result_t>(1, {meta.lpm_hit, meta.tern_hit, meta.path, meta.reg_value,
                                 meta.passes, sm.instance_type});
        }
        if (hdr.data.kind == 4) {
            clone(CloneType.I2E, 5);
        }
        sm.egress_spec = (bit<9>) hdr.data.tag;
    }
}

control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        hdr.ethernet.src = (bit<48>) sm.instance_type;
        if (hdr.data.kind == 5 && meta.passes == 0) {
            meta.passes = 1;
            recirculate_preserving_field_list(1);
        }
        hdr.data.tag = meta.passes;
    }
}

control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.ethernet); pkt.emit(hdr.data); }
}

V1Switch(P(), VC(), I(), E(), CC(), D()) main;
