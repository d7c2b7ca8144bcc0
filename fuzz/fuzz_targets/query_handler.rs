#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitdns::fuzzing::query_handler(data));
