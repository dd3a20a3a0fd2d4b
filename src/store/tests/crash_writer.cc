// crash_writer DIR: writes keys into a store at DIR from four threads as fast as it
// accepts them, printing each acknowledged key ("<thread>:<seq>") on stdout, until
// it is killed. Driven by crash_test.cc.
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "store/db.h"

int main(int argc, char** argv) {
  using namespace herald::store;
  if (argc != 2) return 2;
  DbOptions o;
  o.store.block_cache_mb = 8;
  o.store.write_buffer_mb = 1;  // small memtables: flushes and compactions run mid-load
  auto db = Db::Open(argv[1], o, {"data"});
  if (!db.ok()) return 3;
  auto cf = (*db)->Family("data").value();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int seq = 0;; ++seq) {
        std::string key = std::to_string(t) + ":" + std::to_string(seq);
        WriteBatch b;
        b.Put(cf, key, "value-of-" + key + std::string(100, 'x'));
        if (!(*db)->Write(std::move(b)).ok()) _exit(4);
        std::string line = key + "\n";
        if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          _exit(5);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  return 0;
}
