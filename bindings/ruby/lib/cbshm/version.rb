# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Cbshm
  # The gem's version: the C library's (project(VERSION) in CMakeLists.txt).
  VERSION = "1.1.0"
end
