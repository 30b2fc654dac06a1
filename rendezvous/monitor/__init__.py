"""The monitor: windowed statistics of the live pipeline, drift, feedback accuracy, alerts.

``rendezvous monitor`` is a faust-streaming app (off the latency-critical path)
that reads the ``input``, ``decisions`` (each carries every model's answer) and
``feedback`` topics, the first two in batches of its own
(:mod:`~rendezvous.monitor.bulk`), and keeps, per tumbling window
(``--window-s``) and model: counts, latency p50/p99, score quantiles (DDSketch),
decision status rates, canary-vs-primary disagreement and score-quantile
distance, PSI of every input feature against the training reference in the model
manifest, and the quality of the requests whose feedback label arrived. Each
follows the model's manifest: PSI on quantile bins for a number and on category
shares for a string (a category the manifest never saw in a bin of its own, counted
as ``unseen``); disagreement of the predicted classes (binary: score >= 0.5;
multiclass: the labels; a regression has only the quantile distances); accuracy
for a classifier (labels compared as text: feedback ``1`` or ``"1"`` is class
``1``), AUC for a binary one, RMSE and MAE for a regression.
State lives in a faust table backed by a changelog topic, so a restart continues
the windows. When a closed window crosses a threshold, exactly one record per
(window, cause, subject) goes to the ``alerts`` topic (JSON
:class:`~rendezvous.monitor.alerts.Alert`).

HTTP on ``--metrics-port`` (bound to ``RENDEZVOUS_METRICS_HOST``, 127.0.0.1 by default):
``/`` (a live page of the pipeline: :mod:`~rendezvous.monitor.http`, docs/monitor-page.md),
``/metrics`` (Prometheus text) and
``/windows`` (JSON of every kept window, newest first, open ones included, with the open
alerts, the thresholds, and the registry's versions and each consumer group's lag, which
:mod:`~rendezvous.monitor.pipeline` reads from the broker once per window).

Prometheus series (window gauges describe the latest *closed* window):

=============================================== ======================================
``rendezvous_monitor_records_total{topic}``     records consumed, before sampling
``rendezvous_monitor_processed_total{topic}``   records aggregated, after sampling
``rendezvous_monitor_invalid_total{topic}``     undecodable records, inputs that do not fit
``rendezvous_monitor_alerts_total{cause}``      alerts sent
``rendezvous_monitor_sample_ratio``             fraction of request ids aggregated
``rendezvous_monitor_consumer_lag{topic}``      records not yet consumed
``rendezvous_monitor_batch_latency_seconds``    histogram: time to count <= 256 records
``rendezvous_monitor_window_start_seconds``     start of the window the gauges describe
``rendezvous_monitor_window_end_seconds``       its end
``rendezvous_monitor_model_task{model,task}``   1; its task (binary, multiclass, regression)
``rendezvous_monitor_scores{model}``            scores from the model's workers
``rendezvous_monitor_candidates{model}``        the model's candidates in decisions
``rendezvous_monitor_late{model}``              its answers after their request was decided
``rendezvous_monitor_latency_ms{model,source,quantile}``  p50/p99; source=service (worker
                                                scored-received) or latency (rendezvous view)
``rendezvous_monitor_score_quantile{model,quantile}``     score p10/p50/p90
``rendezvous_monitor_decisions``                decisions
``rendezvous_monitor_decision_rate{status}``    ok / fallback / timeout / rejected fraction
``rendezvous_monitor_decided_in_time_rate``     fraction decided by the decision deadline
                                                (serve's view: reception only callers see)
``rendezvous_monitor_end_to_end_ms{quantile}``  request ts to decision, p50/p99
``rendezvous_monitor_results{status,model}``    decisions per status and chosen model
``rendezvous_monitor_disagreement{primary,canary}``   fraction predicting different classes
                                                  (binary: score >= 0.5; multiclass: labels)
``rendezvous_monitor_score_distance{primary,canary}`` mean |quantile difference| (p5..p95)
``rendezvous_monitor_quantile_distance{primary,canary}`` the same, each score first mapped to
                                                  its quantile under its own model's reference
``rendezvous_monitor_rank_gap{primary,canary}``   mean |quantile(primary) - quantile(canary)|
                                                  per request: 0 when both rank alike
``rendezvous_monitor_inputs``                   inputs binned for drift
``rendezvous_monitor_psi{feature}``             PSI against the training reference
``rendezvous_monitor_unseen{feature}``          inputs whose category (a string feature)
                                                the manifest never saw
``rendezvous_monitor_labelled{model}``          decisions joined to a feedback label
``rendezvous_monitor_accuracy{model}``          classifiers: accuracy on those (binary:
                                                score >= 0.5 = positive class)
``rendezvous_monitor_auc{model}``               binary: ROC AUC on those
``rendezvous_monitor_rmse{model}``              regression: RMSE on those
``rendezvous_monitor_mae{model}``               regression: MAE on those
``rendezvous_monitor_group_lag{group}``         each consumer group's uncommitted records
                                                (from the broker, once per window)
``rendezvous_monitor_model_version{model,version,role}``  the registry's live and shadow
                                                versions; always 1
=============================================== ======================================
"""
