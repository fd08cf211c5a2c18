@echo off
rem Removes the rollcall probe from this Windows endpoint: stops and
rem unregisters the service and deletes the program. The data dir (identity,
rem spool, config, mapping) is kept unless /purge is given, so a reinstall
rem keeps its enrolment; revoke the agent on the coordinator when it is gone
rem for good (`rollcall agent revoke ID`).
rem
rem   uninstall.cmd [/installdir DIR] [/datadir DIR] [/purge]
setlocal EnableExtensions
set "INSTALLDIR=%ProgramFiles%\rollcall"
set "DATADIR=%ProgramData%\rollcall"
set "PURGE=0"
:parse
if "%~1"=="" goto parsed
if /i "%~1"=="/installdir" (set "INSTALLDIR=%~2" & shift & shift & goto parse)
if /i "%~1"=="/datadir" (set "DATADIR=%~2" & shift & shift & goto parse)
if /i "%~1"=="/purge" (set "PURGE=1" & shift & goto parse)
echo uninstall.cmd: unknown argument %1 1>&2
exit /b 64
:parsed
set "EXE=%INSTALLDIR%\rollcall-agent.exe"
if exist "%EXE%" (
    "%EXE%" service stop
    "%EXE%" service uninstall
)
if exist "%INSTALLDIR%" rmdir /s /q "%INSTALLDIR%"
if "%PURGE%"=="1" if exist "%DATADIR%" rmdir /s /q "%DATADIR%"
echo uninstall.cmd: done
exit /b 0
