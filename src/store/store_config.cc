#include "store/store_config.h"

namespace herald::store {

config::Section<StoreConfig> StoreConfigSection() {
  using C = StoreConfig;
  config::Section<C> s("store", "The keyed store (RocksDB) under <data_dir>/store.");
  s.Sync("sync", &C::sync,
         "What a write waits for before it is acknowledged:\n"
         "  \"process\": the write is in the OS (survives kill -9 of herald, not power loss);\n"
         "  \"fsync\":   the write is on disk (each group commit ends with one fsync).");
  s.Uint("block_cache_mb", &C::block_cache_mb, 1, 1 << 20, "RocksDB block cache (the L2 cache), in MiB.");
  s.Uint("write_buffer_mb", &C::write_buffer_mb, 1, 1 << 16,
         "RocksDB memtable size per column family, in MiB.");
  s.Uint("max_batch_ops", &C::max_batch_ops, 1, 1 << 20, "Most operations merged into one group commit.");
  return s;
}

}  // namespace herald::store
