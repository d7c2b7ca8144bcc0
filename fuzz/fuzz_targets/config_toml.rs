#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitdns::fuzzing::config_toml(data));
