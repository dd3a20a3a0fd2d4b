#include "log/log_config.h"

namespace herald::eventlog {

config::Section<LogConfig> LogConfigSection() {
  using C = LogConfig;
  config::Section<C> s("log", "The durable event log: <data_dir>/log, one directory per partition.");
  s.Sync("sync", &C::sync,
         "\"process\": an acknowledged batch is in the OS (survives kill -9 of herald);\n"
         "\"fsync\": each group commit ends with fdatasync (survives power loss).");
  s.Uint("segment_mb", &C::segment_mb, 1, 4096, "Log segment size; retention deletes whole segments.");
  s.Uint("retention_mb", &C::retention_mb, 0, 1ull << 30,
         "Retention per partition, by size (0 = unlimited) and by age in hours (0 = forever).");
  s.Uint("retention_hours", &C::retention_hours, 0, 24ull * 3650, "");
  s.Uint("retention_check_s", &C::retention_check_s, 1, 86400,
         "Clock time between two retention passes. A pass never deletes events that the\n"
         "latest checkpoint of their partition does not cover yet.");
  return s;
}

config::Section<KafkaConfig> KafkaConfigSection() {
  using C = KafkaConfig;
  config::Section<C> s("kafka",
                       "Cluster mode: consume events from `topic` in consumer group `group` and\n"
                       "produce herald's outcome events to `outcomes_topic`. Empty brokers: off.");
  s.String("brokers", &C::brokers, "HOST:PORT,... (--kafka-brokers overrides it).");
  s.String("topic", &C::topic, "");
  s.String("group", &C::group, "");
  s.String("outcomes_topic", &C::outcomes_topic, "");
  s.Uint("session_timeout_ms", &C::session_timeout_ms, 1000, 3'600'000,
         "How long the group waits for a silent consumer before reassigning its partitions\n"
         "(also how long a restarted node may wait to rejoin).");
  return s;
}

}  // namespace herald::eventlog
