//! A stand-alone PDF/OCR worker, as `docent __pdf-worker` runs it: tests of docent-parse use it
//! to exercise the real isolation (limits, protocol) without the docent binary.
//!
//! `pdf-worker __pdf-worker < job`

fn main() {
    std::process::exit(docent_parse::worker::worker_main());
}
