# Targets and helpers shared by the plugin and the test host. Needs OFX_SDK_DIR.
#
#   ofx_api                     INTERFACE: the OpenFX API headers
#   liveedit_ofx_support        STATIC (built only when linked): the SDK's C++ plugin Support library
#   liveedit_ofx_hostsupport    STATIC (built only when linked): the SDK's C++ HostSupport library
#   liveedit_ofx_bundle(TARGET NAME DIR [SOURCES...])
#       a MODULE library laid out as DIR/NAME.ofx.bundle/Contents/<arch>/NAME.ofx, hidden
#       visibility, nothing left unresolved
#   liveedit_ofx_export_entry_points_only(TARGET)
#       export exactly OfxGetPlugin, OfxGetNumberOfPlugins and OfxSetHost (a linker version
#       script; a target with a version script of its own must not call this: GNU ld refuses two)

set(_LIVEEDIT_OFX_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")

# The architecture folder inside a bundle (OpenFX programming guide, "Packaging").
if(APPLE)
  set(LIVEEDIT_OFX_ARCH "MacOS")
elseif(WIN32)
  set(LIVEEDIT_OFX_ARCH "Win64")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(LIVEEDIT_OFX_ARCH "Linux-x86-64")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(LIVEEDIT_OFX_ARCH "Linux-arm64")
else()
  set(LIVEEDIT_OFX_ARCH "Linux-x86")
endif()

if(NOT TARGET ofx_api)
  add_library(ofx_api INTERFACE)
  target_include_directories(ofx_api SYSTEM INTERFACE "${OFX_SDK_DIR}/include")
endif()

if(NOT TARGET liveedit_ofx_support)
  file(GLOB _ofx_support_sources CONFIGURE_DEPENDS "${OFX_SDK_DIR}/Support/Library/*.cpp")
  add_library(liveedit_ofx_support STATIC EXCLUDE_FROM_ALL ${_ofx_support_sources})
  target_include_directories(liveedit_ofx_support SYSTEM PUBLIC "${OFX_SDK_DIR}/Support/include")
  target_link_libraries(liveedit_ofx_support PUBLIC ofx_api)
  set_target_properties(liveedit_ofx_support PROPERTIES POSITION_INDEPENDENT_CODE ON
                        CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(NOT MSVC)
    target_compile_options(liveedit_ofx_support PRIVATE -w)  # third-party code, used unmodified
  endif()
endif()

# only for the test host: a plug-in-only build (-DLIVEEDIT_OFX_TESTHOST=OFF) needs no libexpat
if(NOT TARGET liveedit_ofx_hostsupport AND (NOT DEFINED LIVEEDIT_OFX_TESTHOST OR LIVEEDIT_OFX_TESTHOST))
  find_package(EXPAT REQUIRED)  # Debian: libexpat1-dev
  file(GLOB _ofx_host_sources CONFIGURE_DEPENDS "${OFX_SDK_DIR}/HostSupport/src/*.cpp")
  add_library(liveedit_ofx_hostsupport STATIC EXCLUDE_FROM_ALL ${_ofx_host_sources})
  target_include_directories(liveedit_ofx_hostsupport SYSTEM PUBLIC "${OFX_SDK_DIR}/HostSupport/include")
  target_link_libraries(liveedit_ofx_hostsupport PUBLIC ofx_api EXPAT::EXPAT)
  # The host implements the multithread suite with real threads (the library's fallback runs
  # everything on one thread). No OpenGL render suite.
  target_compile_definitions(liveedit_ofx_hostsupport PUBLIC OFX_SUPPORTS_MULTITHREAD)
  set_target_properties(liveedit_ofx_hostsupport PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(NOT MSVC)
    target_compile_options(liveedit_ofx_hostsupport PRIVATE -w)
  endif()
endif()

function(liveedit_ofx_bundle TARGET NAME DIR)
  add_library(${TARGET} MODULE ${ARGN})
  set(_bundle "${DIR}/${NAME}.ofx.bundle")
  # $<1:...> keeps multi-config generators from adding a per-configuration folder
  set_target_properties(${TARGET} PROPERTIES
    OUTPUT_NAME "${NAME}" PREFIX "" SUFFIX ".ofx"
    LIBRARY_OUTPUT_DIRECTORY "$<1:${_bundle}/Contents/${LIVEEDIT_OFX_ARCH}>"
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${TARGET} PRIVATE ofx_api)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${TARGET} PRIVATE "LINKER:--no-undefined")
  endif()
  set(PLUGIN_NAME "${NAME}")
  set(PLUGIN_EXE "${NAME}.ofx")
  set(PLUGIN_VERSION "${PROJECT_VERSION}")
  set(BUNDLE_IDENTIFIER "org.liveedit.ofx.${NAME}")
  configure_file("${_LIVEEDIT_OFX_CMAKE_DIR}/Info.plist.in" "${_bundle}/Contents/Info.plist" @ONLY)
endfunction()

# Visibility alone still exports libstdc++'s template instantiations (namespace std has default
# visibility), and --exclude-libs would hide entry points that a static library defines (the
# Support library's OfxGetPlugin): a version script exports exactly the entry points.
function(liveedit_ofx_export_entry_points_only TARGET)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${TARGET} PRIVATE "LINKER:--version-script=${_LIVEEDIT_OFX_CMAKE_DIR}/ofx-exports.map")
    set_property(TARGET ${TARGET} APPEND PROPERTY LINK_DEPENDS "${_LIVEEDIT_OFX_CMAKE_DIR}/ofx-exports.map")
  elseif(APPLE)
    target_link_options(${TARGET} PRIVATE "LINKER:-exported_symbol,_OfxGetPlugin"
                        "LINKER:-exported_symbol,_OfxGetNumberOfPlugins" "LINKER:-exported_symbol,_OfxSetHost")
  endif()
endfunction()
