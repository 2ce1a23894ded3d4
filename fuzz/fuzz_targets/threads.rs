#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| misdirect::fuzzing::threads_agree(data));
