# Generated Wayland protocol code for the idle source (ext-idle-notify-v1).
# Included by the top CMakeLists after target dormant_platform exists.
enable_language(C)
find_program(WAYLAND_SCANNER wayland-scanner REQUIRED)
pkg_get_variable(DORMANT_WAYLAND_PROTOCOLS_DIR wayland-protocols pkgdatadir)
if(NOT DORMANT_WAYLAND_PROTOCOLS_DIR)
  set(DORMANT_WAYLAND_PROTOCOLS_DIR /usr/share/wayland-protocols)
endif()
set(DORMANT_IDLE_NOTIFY_XML
    ${DORMANT_WAYLAND_PROTOCOLS_DIR}/staging/ext-idle-notify/ext-idle-notify-v1.xml)
set(DORMANT_WAYLAND_GEN ${CMAKE_BINARY_DIR}/wayland-protocols)
file(MAKE_DIRECTORY ${DORMANT_WAYLAND_GEN})

add_custom_command(
  OUTPUT ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-client-protocol.h
  COMMAND ${WAYLAND_SCANNER} client-header ${DORMANT_IDLE_NOTIFY_XML}
          ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-client-protocol.h
  DEPENDS ${DORMANT_IDLE_NOTIFY_XML}
  VERBATIM)
add_custom_command(
  OUTPUT ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-server-protocol.h
  COMMAND ${WAYLAND_SCANNER} server-header ${DORMANT_IDLE_NOTIFY_XML}
          ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-server-protocol.h
  DEPENDS ${DORMANT_IDLE_NOTIFY_XML}
  VERBATIM)
add_custom_command(
  OUTPUT ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-protocol.c
  COMMAND ${WAYLAND_SCANNER} private-code ${DORMANT_IDLE_NOTIFY_XML}
          ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-protocol.c
  DEPENDS ${DORMANT_IDLE_NOTIFY_XML}
  VERBATIM)

target_sources(dormant_platform PRIVATE
  ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-protocol.c
  ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-client-protocol.h
  ${DORMANT_WAYLAND_GEN}/ext-idle-notify-v1-server-protocol.h)
# The server header serves tests that play a compositor.
target_include_directories(dormant_platform PUBLIC ${DORMANT_WAYLAND_GEN})
