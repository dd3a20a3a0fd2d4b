# The MQTT 3.1.1 codec: pure (no I/O), depends only on core for Status.
# Included from src/mqtt/CMakeLists.txt, so paths are relative to src/mqtt/.
set(HERALD_MQTT_CODEC_SRCS
  codec.cc codec_connect.cc codec_publish.cc codec_subscribe.cc topic.cc utf8.cc)

herald_module(mqtt_codec SRCS ${HERALD_MQTT_CODEC_SRCS} DEPS herald_core)

herald_test(mqtt_codec_test
  SRCS tests/codec_test.cc tests/codec_malformed_test.cc tests/topic_test.cc
       tests/utf8_test.cc
  DEPS herald_mqtt_codec)

# libFuzzer target (clang only). The codec sources are compiled into it rather than
# linked from herald_mqtt_codec: libFuzzer only sees coverage of code built with
# -fsanitize=fuzzer. Run it on a scratch copy of the seeds, since libFuzzer adds
# the inputs it finds to its first corpus directory:
#   cp -r tests/fuzz/mqtt_codec_corpus /tmp/c && mqtt_codec_fuzz -max_total_time=60 /tmp/c
if(HERALD_FUZZ)
  add_executable(mqtt_codec_fuzz fuzz/codec_fuzz.cc ${HERALD_MQTT_CODEC_SRCS})
  target_include_directories(mqtt_codec_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(mqtt_codec_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(mqtt_codec_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(mqtt_codec_fuzz PRIVATE herald_core)
endif()
