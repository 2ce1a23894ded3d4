#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| misdirect::fuzzing::app_stream(data));
