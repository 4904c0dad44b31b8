# Every dependency comes from Debian's archive (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)  # Debian libnghttp2-dev (proxy/)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)  # Debian nlohmann-json3-dev, header-only (acme/)
find_package(CLI11 2.1 CONFIG REQUIRED)  # Debian libcli11-dev, header-only (cli/)
find_package(prometheus-cpp CONFIG REQUIRED COMPONENTS core)
find_package(Threads REQUIRED)

# llhttp: Debian ships it as C sources (node-llhttp); they must be compiled as C.
set(LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "llhttp C sources")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp header")
add_library(llhttp STATIC ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c)
set_target_properties(llhttp PROPERTIES LINKER_LANGUAGE C POSITION_INDEPENDENT_CODE ON)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
# Strict mode checks the CRLF after chunk data (otherwise skipped unread: a
# request-smuggling desync) and rejects tabs and non-ASCII in request targets.
target_compile_definitions(llhttp PRIVATE LLHTTP_STRICT_MODE=1)

# BoringSSL: by default the build that scripts/boringssl.sh caches (full speed);
# optionally Debian's binary android-libboringssl-dev.
if(TLSEDGE_SYSTEM_BORINGSSL)
  set(BORINGSSL_INCLUDE_DIR /usr/include/android)
  set(BORINGSSL_SSL_LIB /usr/lib/x86_64-linux-gnu/android/libssl.so)
  set(BORINGSSL_CRYPTO_LIB /usr/lib/x86_64-linux-gnu/android/libcrypto.so)
else()
  if(NOT BORINGSSL_ROOT)
    message(FATAL_ERROR "Set BORINGSSL_ROOT to the directory printed by scripts/boringssl.sh "
                        "(or -DTLSEDGE_SYSTEM_BORINGSSL=ON)")
  endif()
  set(BORINGSSL_INCLUDE_DIR ${BORINGSSL_ROOT}/include)
  set(BORINGSSL_SSL_LIB ${BORINGSSL_ROOT}/lib/libssl.a)
  set(BORINGSSL_CRYPTO_LIB ${BORINGSSL_ROOT}/lib/libcrypto.a)
  set(BORINGSSL_BSSL ${BORINGSSL_ROOT}/bin/bssl)
endif()
add_library(boringssl::crypto UNKNOWN IMPORTED)
set_target_properties(boringssl::crypto PROPERTIES IMPORTED_LOCATION ${BORINGSSL_CRYPTO_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR})
target_link_libraries(boringssl::crypto INTERFACE Threads::Threads)
add_library(boringssl::ssl UNKNOWN IMPORTED)
set_target_properties(boringssl::ssl PROPERTIES IMPORTED_LOCATION ${BORINGSSL_SSL_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR})
target_link_libraries(boringssl::ssl INTERFACE boringssl::crypto)
