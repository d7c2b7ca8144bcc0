#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitdns::fuzzing::dnsmasq_rule(data));
