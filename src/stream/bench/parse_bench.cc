// stream_parse_bench: parse throughput of POST /v1/events bodies.
//
//   stream_parse_bench [batches]   (default 10000 batches of 1,000 events)
//
// Builds one NDJSON body of 1,000 small mixed events (app_open, read with tags,
// sent/opened with ids, location), parses it `batches` times on one thread and
// prints events/s and MB/s; then the same events as one JSON array, and the
// cost of folding them into features. Not a ctest test: numbers depend on the
// machine.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "stream/features.h"
#include "stream/parse.h"
#include "stream/timezones.h"

namespace {

using herald::stream::BatchFormat;

std::string Line(int i) {
  // Built with append: operator+ on literals trips a false GCC 12 -Wrestrict warning.
  std::string s = "{\"user_id\":\"user-";
  s.append(std::to_string(i % 97)).append("\",\"ts\":").append(std::to_string(1767571200 + i * 7));
  switch (i % 5) {
    case 0:
      return s.append(",\"type\":\"app_open\"}");
    case 1:
      return s.append(",\"type\":\"read\",\"attrs\":{\"item\":\"article-")
          .append(std::to_string(i))
          .append("\",\"tags\":[\"sports\",\"nba\"]}}");
    case 2:
      return s.append(",\"type\":\"sent\",\"account_id\":\"svc-1\",\"campaign_id\":\"c7\",")
          .append("\"message_id\":\"m")
          .append(std::to_string(i))
          .append("\"}");
    case 3:
      return s.append(",\"type\":\"opened\",\"message_id\":\"m")
          .append(std::to_string(i - 1))
          .append("\"}");
    default:
      return s.append(",\"type\":\"location\",\"attrs\":{\"lat\":39.9042,\"lng\":116.4074}}");
  }
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void Run(const char* label, const std::string& body, BatchFormat format, long batches) {
  std::size_t events = 0;
  auto start = std::chrono::steady_clock::now();
  for (long b = 0; b < batches; ++b) {
    herald::stream::ParsedBatch parsed = herald::stream::ParseEvents(body, format, "default");
    if (parsed.fatal || !parsed.rejected.empty()) {
      std::fprintf(stderr, "unexpected rejection\n");
      std::exit(1);
    }
    events += parsed.events.size();
  }
  const double s = Seconds(start);
  std::printf("%-7s %zu events in %.2f s: %.2f M events/s, %.0f MB/s (%zu-byte body)\n", label,
              events, s, events / s / 1e6, body.size() * static_cast<double>(batches) / s / 1e6,
              body.size());
}

}  // namespace

int main(int argc, char** argv) {
  const long batches = argc > 1 ? std::atol(argv[1]) : 10000;
  std::string ndjson, array = "[";
  for (int i = 0; i < 1000; ++i) {
    ndjson.append(Line(i)).push_back('\n');
    if (i) array.push_back(',');
    array.append(Line(i));
  }
  array += "]";
  Run("ndjson", ndjson, BatchFormat::kNdjson, batches);
  Run("array", array, BatchFormat::kJsonArray, batches);

  const auto parsed = herald::stream::ParseEvents(ndjson, BatchFormat::kNdjson, "default");
  const auto& tz = herald::stream::TimeZoneOrUtc("Asia/Shanghai");
  herald::stream::UserFeatures features[97];
  const long rounds = batches / 10 + 1;
  auto start = std::chrono::steady_clock::now();
  for (long r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < parsed.events.size(); ++i) {
      herald::stream::Apply(features[i % 97], parsed.events[i], tz);
    }
  }
  const double s = Seconds(start);
  std::printf("apply   %.2f M events/s into UserFeatures (%zu bytes each)\n",
              rounds * parsed.events.size() / s / 1e6, sizeof(herald::stream::UserFeatures));
  return 0;
}
