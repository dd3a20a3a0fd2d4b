#include <gtest/gtest.h>

#include "core/metrics.h"

namespace herald {

TEST(MetricsTest, RendersCountersGaugesAndHistogramsInPrometheusText) {
  MetricsRegistry reg;
  reg.GetCounter("herald_requests_total", "Requests.", {{"code", "200"}}).Inc(3);
  reg.GetCounter("herald_requests_total", "Requests.", {{"code", "404"}}).Inc();
  reg.GetGauge("herald_connections", "Open connections.").Set(7);
  auto& h = reg.GetHistogram("herald_latency_seconds", "Latency.", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = reg.Render();
  EXPECT_NE(text.find("# TYPE herald_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("herald_requests_total{code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("herald_requests_total{code=\"404\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("herald_connections 7\n"), std::string::npos);
  EXPECT_NE(text.find("herald_latency_seconds_bucket{le=\"0.1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("herald_latency_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("herald_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("herald_latency_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("herald_latency_seconds_sum 5.55\n"), std::string::npos);
}

TEST(MetricsTest, SameNameAndLabelsReturnTheSameMetric) {
  MetricsRegistry reg;
  Counter& a = reg.GetCounter("herald_x_total", "X.", {{"k", "v"}});
  Counter& b = reg.GetCounter("herald_x_total", "X.", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
}

TEST(MetricsTest, CollectorsRunAtRenderAndLabelsAreEscaped) {
  MetricsRegistry reg;
  int runs = 0;
  reg.AddCollector([&](MetricsRegistry& r) {
    ++runs;
    r.GetGauge("herald_depth", "Depth.", {{"q", "a\"b"}}).Set(runs);
  });
  reg.Render();
  std::string text = reg.Render();
  EXPECT_EQ(runs, 2);
  EXPECT_NE(text.find("herald_depth{q=\"a\\\"b\"} 2\n"), std::string::npos);
}

}  // namespace herald
