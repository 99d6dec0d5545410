// Package gateway is the IoT gateway simulation, the engine's main job and
// workload W10 of bench/README.md, as a package: the YAML configuration of
// the mix (Parse, LoadFile, Default), the mix itself on an engine (Run),
// the same mix on a goroutine per device with channels (RunBaseline), the
// open-loop load that drives both, and the step-up Search for the highest
// rate at which latency stays within bounds.
//
// Devices receive telemetry.<device>.<sensor> from outside at a fixed
// offered rate, update their state and publish feature vectors; feature
// agents aggregate them, inference agents take them in batches, and an
// alert agent watches alerts.>. A Summary reports offered and achieved
// rates, end-to-end latency percentiles (stamped at arrival, measured at
// the inference agent), drops and process CPU time.
//
// cmd/gateway runs it (make run); cmd/agentloop load searches both
// systems' capacity, taking turns run by run. It sits above the engine and
// is built only from its public API.
package gateway
