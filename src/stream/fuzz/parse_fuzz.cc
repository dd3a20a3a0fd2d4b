// libFuzzer target: event bodies from the network (both batch formats), and the
// event codec on whatever the parser accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "stream/event_codec.h"
#include "stream/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald::stream;
  using herald::Result;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (BatchFormat format : {BatchFormat::kNdjson, BatchFormat::kJsonArray}) {
    ParsedBatch batch = ParseEvents(body, format, "fuzz", 1000);
    for (const Event& e : batch.events) {
      if (!Validate(e).ok()) std::abort();  // accepted events always validate
      Result<Event> back = DecodeEvent(EncodeEvent(e));
      if (!back.ok() || !(*back == e)) std::abort();
    }
  }
  (void)DecodeEvent(body);
  return 0;
}
