//! `cargo fuzz run json6902`: see `pbc_compiler::fuzzing::json6902` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pbc_compiler::fuzzing::json6902(data);
});
