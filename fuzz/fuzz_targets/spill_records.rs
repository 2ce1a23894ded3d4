#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| misdirect::fuzzing::spill_records(data));
