// SPDX-License-Identifier: Apache-2.0
#pragma once
// The Prometheus view of a poll. Families are built once per poll on the poll thread (from the
// finished PollView) and handed to scrapes as an immutable value: a scrape only serializes,
// never waits for a poll, and always sees one poll.
//
// Label cardinality is capped per family (MetricsOptions::maxGroups): the top groups by
// CLOSE_WAIT count then total (or by port usage) keep their labels; the rest are summed under one
// series whose group labels all read "other", and waitwatch_series_folded says how many groups
// each family folded.
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <vector>

#include "rules/config.hpp"
#include "service/poll_view.hpp"

namespace waitwatch {

inline constexpr std::string_view kFoldedLabel = "other";

// Every family rendered from one poll, in a stable order.
std::vector<prometheus::MetricFamily> buildPollFamilies(const PollView& view,
                                                        const MetricsOptions& options);

// A prometheus::Collectable that returns the families of the latest published poll (none
// before the first poll). It also hands out that poll's view to the JSON API, so both show the
// same poll.
class PollMetrics : public prometheus::Collectable {
 public:
  // Poll thread: builds the families of `view` and swaps both in.
  void publish(std::shared_ptr<const PollView> view, const MetricsOptions& options);
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The latest published view; null before the first poll.
  [[nodiscard]] std::shared_ptr<const PollView> view() const;

 private:
  struct Published {
    std::shared_ptr<const PollView> view;
    std::vector<prometheus::MetricFamily> families;
  };
  Latest<Published> latest_;
};

}  // namespace waitwatch
